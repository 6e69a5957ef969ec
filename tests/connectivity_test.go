package tests

//  PFX-c1 10.77.0.10   PFX-c2 10.77.0.11       PFX-c3 10.77.0.20   PFX-c4 10.77.0.21
//    eth0 (TAP)          eth0 (TAP)               eth0 (TAP)          eth0 (TAP)
//         \               /                            \               /
//        vxwire up (PFX-h1)                           vxwire up (PFX-h2)
//        PFX-u1 198.18.0.1/24 ========= veth ========= PFX-u2 198.18.0.2/24
//
//  network blue: VNI 256, 10.77.0.0/24, gateway 10.77.0.1

import (
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
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{
		peers:    []*host{h1},
		networks: []netConf{blue},
		endpoints: []epConf{
			{network: "blue", name: "c3", ns: c3, addr: "10.77.0.20"},
			{network: "blue", name: "c4", ns: c4, addr: "10.77.0.21"},
		},
	}))
	d1.waitReady("c1", "c2")
	d2.waitReady("c3", "c4")

	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c3, "10.77.0.10")
	e.mustPing(c2, "10.77.0.21")
	e.mustPing(c4, "10.77.0.11")
	e.mustPing(c1, "10.77.0.11") // same host

	e.transfer(c1, c3, "10.77.0.20", 64<<20, 2*time.Minute)

	st := e.mustStatus(h1)
	if len(st.Peers) != 1 || st.Peers[0].Name != "h2" || st.Peers[0].Counters.TxFrames == 0 || st.Peers[0].Counters.RxFrames == 0 {
		t.Errorf("status of h1: want peer h2 with frames sent and received, got %+v", st.Peers)
	}
}
