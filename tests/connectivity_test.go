package tests

//  PFX-c1 10.77.0.10   PFX-c2 10.77.0.11       PFX-c3 10.77.0.20   PFX-c4 10.77.0.21
//    eth0 (TAP)          eth0 (TAP)               eth0 (TAP)          eth0 (TAP)
//         \               /                            \               /
//        vxwire up (PFX-h1)                           vxwire up (PFX-h2)
//        PFX-u1 198.18.0.1/24 ========= veth ========= PFX-u2 198.18.0.2/24
//
//  network blue: VNI 256, 10.77.0.0/24, gateway 10.77.0.1

import (
	"strings"
	"testing"
	"time"
)

// TestTwoHostsConnectivity checks the basic promise: containers on one
// network reach each other across hosts and on the same host, and a bulk
// TCP transfer across hosts arrives intact.
func TestTwoHostsConnectivity(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c2, c3, c4 := e.container("c1"), e.container("c2"), e.container("c3"), e.container("c4")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers:    []*host{h2},
		networks: []netConf{blue},
		endpoints: []epConf{
			{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"},
			{network: "blue", name: "c2", ns: c2, addr: "10.77.0.11"},
		},
	}))
	// h2 runs its Go code on three threads, more than this machine's CPUs
	// may be: the file's number is taken as it is.
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{
		procs:    3,
		peers:    []*host{h1},
		networks: []netConf{blue},
		endpoints: []epConf{
			{network: "blue", name: "c3", ns: c3, addr: "10.77.0.20"},
			{network: "blue", name: "c4", ns: c4, addr: "10.77.0.21"},
		},
	}))
	d1.waitReady("c1", "c2")
	d2.waitReady("c3", "c4")
	if log := d2.logText(); !strings.Contains(log, `msg="threads for Go code" procs=3 from=host.procs`) {
		t.Errorf("h2's daemon did not take procs = 3 from its file; its log:\n%s", log)
	}
	if log := d1.logText(); !strings.Contains(log, `msg="threads for Go code" procs=`) || strings.Contains(log, "from=host.procs") {
		t.Errorf("h1's daemon, without procs in its file, did not choose its threads itself; its log:\n%s", log)
	}

	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c3, "10.77.0.10")
	e.mustPing(c2, "10.77.0.21")
	e.mustPing(c4, "10.77.0.11")
	e.mustPing(c1, "10.77.0.11") // same host

	from0, to0 := endpointTAP(e.mustStatus(h1), "c1"), endpointTAP(e.mustStatus(h2), "c3")
	e.transfer(c1, c3, "10.77.0.20", 64<<20, 2*time.Minute)
	from1, to1 := endpointTAP(e.mustStatus(h1), "c1"), endpointTAP(e.mustStatus(h2), "c3")
	// Each superframe c1's kernel handed its TAP leaves in one UDP GSO
	// send (its TAP caps superframes at what one holds) and reaches c3 in
	// one write: batches end between superframes on both hosts. Writes
	// that cut superframes in two came to about 1.6 per read.
	reads, writes := from1.RxReads-from0.RxReads, to1.TxWrites-to0.TxWrites
	t.Logf("c1's TAP: %d reads, %d superframes, %d frames; c3's TAP: %d writes, %d frames",
		reads, from1.RxSuperframes-from0.RxSuperframes, from1.RxFrames-from0.RxFrames, writes, to1.TxFrames-to0.TxFrames)
	if segs := from1.RxFrames - from0.RxFrames; from1.RxSuperframes == from0.RxSuperframes || segs > 44*(from1.RxSuperframes-from0.RxSuperframes)+64 {
		t.Errorf("c1's superframes: %d frames in %d, want at most 44 each (MTU 1450)", segs, from1.RxSuperframes-from0.RxSuperframes)
	}
	if writes == 0 || writes > reads+reads/4 {
		t.Errorf("c3's TAP took %d writes for the %d reads of c1's: superframes were cut in two", writes, reads)
	}

	st := e.mustStatus(h1)
	if len(st.Peers) != 1 || st.Peers[0].Name != "h2" || st.Peers[0].Counters.TxFrames == 0 || st.Peers[0].Counters.RxFrames == 0 {
		t.Errorf("status of h1: want peer h2 with frames sent and received, got %+v", st.Peers)
	}
}
