package tests

//  PFX-c1 10.77.0.10                 PFX-c2 10.77.0.20
//      |                                 |
//  vxwire up (PFX-h1)               vxwire up (PFX-h2)              PFX-h3: a configured peer of
//  peers h2, h3                     peers h1, h3                    both, running no vxwire: the
//      |                                 |                          attacker (a compromised host
//  PFX-u1 198.18.0.1 ------------- PFX-u2 198.18.0.2 ------------- PFX-u3 198.18.0.3
//                    \______ bridge br0 in PFX-sw ______/           or kernel VXLAN peer) sends
//                                                                   hand-made VXLAN from its
//                                                                   own address

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// peerTopo is the topology drawn above.
type peerTopo struct {
	h1, h2, h3 *host
	c1, c2     *netns
}

func (e *env) peerTopo() peerTopo {
	e.t.Helper()
	hosts, _ := e.threeHosts()
	p := peerTopo{h1: hosts[0], h2: hosts[1], h3: hosts[2], c1: e.container("c1"), c2: e.container("c2")}
	d1 := e.startDaemon(p.h1, e.writeConfig(p.h1, hostConf{
		peers: []*host{p.h2, p.h3}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: p.c1, addr: "10.77.0.10"}},
	}))
	d2 := e.startDaemon(p.h2, e.writeConfig(p.h2, hostConf{
		peers: []*host{p.h1, p.h3}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: p.c2, addr: "10.77.0.20"}},
	}))
	d1.waitReady("c1")
	d2.waitReady("c2")
	return p
}

// forged returns a VXLAN datagram for blue carrying an IPv4/UDP frame from
// MAC src to MAC dst with payload.
func forged(dst, src net.HardwareAddr, payload []byte) []byte {
	return vxlanDatagram(0x08, uint32(blue.vni), udpFrame(dst, src, "10.77.0.99", "10.77.0.10", 4444, 7002, payload))
}

// TestAdversaryPeerStealsRecordMAC has peer h3 send frames with c2's MAC
// as their source, to c1, while c1 pings c2. Before this fix every such
// frame reached c1 as if from c2 and moved c2's MAC to h3 in h1's
// forwarding table (each reply of c2 moved it back), so c1's pings went
// to h3 and were lost. c2's MAC comes from its gossip record and is now
// pinned behind h2: the forged frames are dropped as spoofed and the
// pings all arrive, while the same kind of datagram from h3 with a MAC
// nobody owns is delivered to c1 (h3 is a peer; only the theft fails).
func TestAdversaryPeerStealsRecordMAC(t *testing.T) {
	e := newEnv(t, "dig")
	p := e.peerTopo()
	e.mustPing(p.c1, "10.77.0.20")
	e.eventually(readyTimeout, "h1 knows c2's record", func() error {
		return e.resolvesTo(p.c1, "10.77.0.1", "c2", "10.77.0.20")
	})
	mc1, mc2 := mac(e.linkMAC(p.c1, "eth0")), mac(e.linkMAC(p.c2, "eth0"))
	to := netip.AddrPortFrom(netip.MustParseAddr(p.h1.addr), 4789)

	inbox := e.listenUDP(p.c1, "10.77.0.10", 7002)
	ctrl := e.marker("peer-frame")
	e.eventually(reachTimeout, "a frame from h3 with a fresh MAC reaches c1", func() error {
		e.sendUDP(p.h3.netns, p.h3.addr, to, forged(mc1, mac("02:00:00:00:99:03"), ctrl))
		b, err := inbox.next(time.Second)
		if err == nil && string(b) != string(ctrl) {
			err = fmt.Errorf("got %q", b)
		}
		return err
	})

	before := e.mustStatus(p.h1)
	// Forged frames every 5 ms for the 2 s of the pings (bounded: 600).
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for ; n < 600; n++ {
			select {
			case <-stop:
				done <- n
				return
			case <-time.After(5 * time.Millisecond):
			}
			e.sendUDP(p.h3.netns, p.h3.addr, to, forged(mc1, mc2, []byte("stolen")))
		}
		done <- n
	}()
	out, err := e.in(p.c1, "ping", "-c", "20", "-i", "0.1", "-W", "1", "10.77.0.20")
	close(stop)
	n := <-done
	t.Logf("%d forged frames from h3 during the pings", n)
	if err != nil || !strings.Contains(out, " 20 received") {
		t.Fatalf("c1's pings to c2 while h3 claims c2's MAC: want 20 of 20: %v\n%s", err, out)
	}
	e.dropDelta(p.h1, before, api.DropSpoofed, uint64(n))
	for {
		b, err := inbox.next(time.Second)
		if err != nil {
			break
		}
		if string(b) == "stolen" {
			t.Fatal("a frame from h3 with c2's source MAC reached c1")
		}
	}
}

// TestAdversaryFDBExhaustion has peer h3 send 10000 frames, each from a
// new source MAC. Before this fix h1 learned every one (memory grows
// with whatever a peer sends, until ageing); now the network's table
// learns at most 8192, counts the rest as fdb_full, and c1 still reaches
// c2. The first frames are learned, which shows that the path works.
func TestAdversaryFDBExhaustion(t *testing.T) {
	e := newEnv(t)
	p := e.peerTopo()
	e.mustPing(p.c1, "10.77.0.20")
	to := netip.AddrPortFrom(netip.MustParseAddr(p.h1.addr), 4789)
	nowhere := mac("02:ee:ff:ff:ff:ff")
	fdbOf := func(st api.Status) int {
		for _, n := range st.Networks {
			if n.Name == "blue" {
				return n.FDB
			}
		}
		return -1
	}
	const total = 10000
	batch := func(from, to int) [][]byte {
		var out [][]byte
		for i := from; i < to; i++ {
			src := net.HardwareAddr{0x02, 0xee, 0, byte(i >> 16), byte(i >> 8), byte(i)}
			out = append(out, forged(nowhere, src, []byte("new mac")))
		}
		return out
	}
	before := fdbOf(e.mustStatus(p.h1))
	e.sendUDP(p.h3.netns, p.h3.addr, to, batch(0, 100)...)
	e.eventually(readyTimeout, "h1 learns the first MACs from h3", func() error {
		st, err := e.status(p.h1)
		if err != nil {
			return err
		}
		if got := fdbOf(st) - before; got < 90 {
			return fmt.Errorf("learned %d of 100", got)
		}
		return nil
	})
	// The rest in chunks, each once h1 has read most of the one before,
	// so that the socket's buffer does not drop them.
	for i := 100; i < total; i += 500 {
		want := uint64(min(i+500, total))
		e.sendUDP(p.h3.netns, p.h3.addr, to, batch(i, min(i+500, total))...)
		e.eventually(readyTimeout, "h1 reads the chunk", func() error {
			st, err := e.status(p.h1)
			if err != nil {
				return err
			}
			for _, r := range st.Peers {
				if r.Name == "h3" && r.Counters.RxFrames >= want*9/10 {
					return nil
				}
			}
			return fmt.Errorf("h3's frames not read yet")
		})
	}
	var st api.Status
	e.eventually(readyTimeout, "fdb_full counted", func() error {
		var err error
		if st, err = e.status(p.h1); err != nil {
			return err
		}
		if drops(st, api.DropFDBFull) == 0 {
			return fmt.Errorf("no fdb_full drops; fdb %d entries", fdbOf(st))
		}
		return nil
	})
	t.Logf("after %d new MACs from h3: fdb %d entries, fdb_full %d", total, fdbOf(st), drops(st, api.DropFDBFull))
	// 8192 learned, plus the gateway's, c1's and c2's own entries.
	if got := fdbOf(st); got > 8192+3 {
		t.Fatalf("fdb holds %d entries, bound 8192 learned", got)
	}
	e.mustPing(p.c1, "10.77.0.20")
}

// TestAdversaryPeerStealsLocalMAC has peer h3 send broadcast frames to
// h1 whose source is c1's MAC, c1 being h1's own container, while c2
// pings c1. Local MACs have been pinned to their ports since the first
// engine; this test pins that end to end: every forged frame is dropped
// as spoofed and not delivered (c1 would see its own MAC come in), and
// all 20 pings arrive, which they would not if h1 had moved c1's MAC
// behind h3. The probe: the same broadcast from h3 with a MAC nobody
// owns reaches c1.
func TestAdversaryPeerStealsLocalMAC(t *testing.T) {
	e := newEnv(t)
	p := e.peerTopo()
	e.mustPing(p.c2, "10.77.0.10")
	mc1 := mac(e.linkMAC(p.c1, "eth0"))
	bcast := mac("ff:ff:ff:ff:ff:ff")
	to := netip.AddrPortFrom(netip.MustParseAddr(p.h1.addr), 4789)

	inbox := e.listenUDP(p.c1, "10.77.0.10", 7002)
	ctrl := e.marker("peer-frame")
	e.eventually(reachTimeout, "a broadcast from h3 with a fresh MAC reaches c1", func() error {
		e.sendUDP(p.h3.netns, p.h3.addr, to, forged(bcast, mac("02:00:00:00:99:03"), ctrl))
		b, err := inbox.next(time.Second)
		if err == nil && string(b) != string(ctrl) {
			err = fmt.Errorf("got %q", b)
		}
		return err
	})

	before := e.mustStatus(p.h1)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for ; n < 600; n++ { // bounded: 600 frames, 5 ms apart
			select {
			case <-stop:
				done <- n
				return
			case <-time.After(5 * time.Millisecond):
			}
			e.sendUDP(p.h3.netns, p.h3.addr, to, forged(bcast, mc1, []byte("stolen")))
		}
		done <- n
	}()
	out, err := e.in(p.c2, "ping", "-c", "20", "-i", "0.1", "-W", "1", "10.77.0.10")
	close(stop)
	n := <-done
	t.Logf("%d forged frames from h3 during the pings", n)
	if err != nil || !strings.Contains(out, " 20 received") {
		t.Fatalf("c2's pings to c1 while h3 claims c1's MAC: want 20 of 20: %v\n%s", err, out)
	}
	e.dropDelta(p.h1, before, api.DropSpoofed, uint64(n))
	for {
		b, err := inbox.next(time.Second)
		if err != nil {
			break
		}
		if string(b) == "stolen" {
			t.Fatal("a frame from h3 with c1's own source MAC reached c1")
		}
	}
}
