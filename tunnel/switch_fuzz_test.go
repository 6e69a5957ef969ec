package tunnel

import (
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
)

// events is a port's or host's frames received plus frames dropped, not
// counting fdb_full, which refuses learning but not the frame.
func events(c *counters) uint64 {
	n := c.rxFrames.Load()
	for r := range c.drops {
		if dropReason(r) != dropFDBFull {
			n += c.drops[r].Load()
		}
	}
	return n
}

// FuzzSwitchFromPort feeds whatever a container may write to its TAP into
// the switch, from a container's port or from the gateway's. Invariants:
// no panic, and the frame is either received or dropped with a reason,
// exactly once.
func FuzzSwitchFromPort(f *testing.F) {
	ma, mb := macOf("10.77.0.10"), macOf("10.77.0.11")
	f.Add(ipv4Frame(mb, ma, "10.77.0.10"), false)
	f.Add(ipv4Frame(Broadcast, ma, "10.77.0.99"), false)
	f.Add(arpFrame(ether.ARPRequest, Broadcast, ma, ma, "10.77.0.10", "10.77.0.11"), false)
	f.Add(arpFrame(ether.ARPReply, mb, ma, ma, "10.77.0.1", "10.77.0.11"), false)
	f.Add(typed(ma, ether.TypeIPv6, 40), false)
	f.Add(typed(ma, 0x8100, 4), false)
	f.Add(ipv4Frame(ma, macOf("10.77.0.1"), "192.0.2.1"), true)
	f.Add([]byte{1, 2, 3}, false)
	e, _ := hotPathEngine(f)
	pool := e.sw.poolFor(e.networks["blue"].mtu)
	f.Fuzz(func(t *testing.T, frame []byte, fromGateway bool) {
		p := e.ports[epKey{"blue", "a"}]
		if fromGateway {
			p = e.networks["blue"].gw
		}
		b := pool.get()
		defer pool.put(b)
		if len(frame) > len(b.bufs[0])-encap.HeaderLen {
			frame = frame[:len(b.bufs[0])-encap.HeaderLen]
		}
		putFrame(b, 0, frame)
		before := events(&p.stats)
		e.sw.switchFromPort(p, b, 1)
		if got := events(&p.stats) - before; got != 1 {
			t.Fatalf("frame %x counted %d times, want once as received or dropped", frame, got)
		}
	})
}

// FuzzSwitchFromUnderlay feeds datagrams from a peer or a stranger into
// the switch, as they arrive on the VXLAN socket or out of WireGuard.
// Invariants: no panic, each datagram is received or dropped exactly once,
// and the forwarding table stays within its bound.
func FuzzSwitchFromUnderlay(f *testing.F) {
	bufs, _, _ := underlayBatch(1, macOf("10.77.0.10"), netip.AddrPort{})
	f.Add(bufs[0], true, false)
	f.Add(bufs[0], false, false)
	f.Add(bufs[0][:encap.HeaderLen+3], true, false)
	bad := append([]byte(nil), bufs[0]...)
	bad[0] = 0
	f.Add(bad, true, false)
	f.Add(bufs[0], true, true)
	e, _ := hotPathEngine(f)
	e.networks["blue"].fdb.max = 64
	peer, stranger := netip.MustParseAddrPort("198.18.0.2:4789"), netip.MustParseAddrPort("198.18.0.9:4789")
	var s scratch
	bb := [][]byte{make([]byte, encap.MaxDatagram)}
	sizes := []int{0}
	eps := []netip.AddrPort{{}}
	f.Fuzz(func(t *testing.T, d []byte, fromPeer, encrypted bool) {
		sizes[0] = copy(bb[0], d)
		eps[0] = stranger
		if fromPeer {
			eps[0] = peer
		}
		before := events(&e.sw.host)
		e.sw.switchFromUnderlay(&s, bb, sizes, eps, 1, encrypted)
		if got := events(&e.sw.host) - before; got != 1 {
			t.Fatalf("datagram %x counted %d times, want once as received or dropped", d, got)
		}
		fd := e.networks["blue"].fdb
		fd.mu.RLock()
		n := fd.learned
		fd.mu.RUnlock()
		if n > fd.max {
			t.Fatalf("fdb holds %d learned entries, bound %d", n, fd.max)
		}
	})
}
