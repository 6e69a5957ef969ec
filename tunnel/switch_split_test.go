package tunnel

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
)

// copyConn is a discardConn that keeps a copy of every datagram it is
// asked to send; gatherCopyConn adds sending datagrams gathered from a
// head and a tail (encap.GatherWriter) and counts those.
type copyConn struct {
	discardConn
	gathered int
	dgrams   [][]byte
}

func (c *copyConn) Write(bufs [][]byte, _ netip.AddrPort) error {
	for _, b := range bufs {
		c.dgrams = append(c.dgrams, append([]byte(nil), b...))
	}
	return nil
}

// gatherCopyConn is a copyConn that gathers.
type gatherCopyConn struct{ copyConn }

var _ encap.GatherWriter = (*gatherCopyConn)(nil)

func (c *gatherCopyConn) WriteGather(heads, tails [][]byte, _ netip.AddrPort) error {
	for i, h := range heads {
		c.dgrams = append(c.dgrams, append(append([]byte(nil), h...), tails[i]...))
		if len(tails[i]) > 0 {
			c.gathered++
		}
	}
	return nil
}

// fillSplitBatch puts n TCP segments from src to dst in b as a split read
// leaves them: 54 bytes of headers in the buffer, 1346 bytes of payload
// lent in tails, and returns each frame whole, as it must arrive.
func fillSplitBatch(b *batch, n int, dst, src MAC) (want [][]byte) {
	const hdr, pay = ether.HeaderLen + 20 + 20, 1346
	for i := 0; i < n; i++ {
		whole := make([]byte, hdr+pay)
		(&EthHeader{Dst: dst, Src: src, Type: ether.TypeIPv4}).Encode(whole)
		whole[ether.HeaderLen] = 0x45
		whole[ether.HeaderLen+9] = 6 // TCP
		copy(whole[ipv4SrcOff:ipv4SrcOff+4], src[2:6])
		whole[ether.HeaderLen+20+12] = 5 << 4
		for j := hdr; j < len(whole); j++ {
			whole[j] = byte(i + j)
		}
		clear(b.bufs[i])
		copy(b.bufs[i][encap.HeaderLen:], whole[:hdr])
		b.sizes[i], b.tails[i] = hdr, whole[hdr:]
		want = append(want, whole)
	}
	b.split = true
	return want
}

// TestSwitchFromPortSplit checks where a split read's payloads go: to a
// peer through a socket that gathers, apart from their headers; anywhere
// else (a socket that cannot gather, a local port, a flood) joined to
// them first. Every datagram and frame must arrive whole either way.
func TestSwitchFromPortSplit(t *testing.T) {
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	for _, gather := range []bool{true, false} {
		e, _ := hotPathEngine(t)
		p := e.ports[epKey{"blue", "a"}]
		e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
		// One recorder behind every sending socket: the flow hash picks one.
		var c encap.Conn
		rec := &copyConn{discardConn: discardConn{closed: make(chan struct{})}}
		if gather {
			g := &gatherCopyConn{copyConn{discardConn: discardConn{closed: make(chan struct{})}}}
			c, rec = g, &g.copyConn
		} else {
			c = rec
		}
		for i := range e.sw.tx {
			e.sw.tx[i] = c
		}
		if e.sw.gathers() != gather {
			t.Fatalf("gathers() = %v, want %v", e.sw.gathers(), gather)
		}
		b := e.sw.poolFor(p.net.mtu).get()
		want := fillSplitBatch(b, 16, remote, p.mac)
		e.sw.switchFromPort(p, b, 16)
		if len(rec.dgrams) != 16 {
			t.Fatalf("gather=%v: %d datagrams sent, want 16", gather, len(rec.dgrams))
		}
		for i, d := range rec.dgrams {
			if !bytes.Equal(d[encap.HeaderLen:], want[i]) {
				t.Fatalf("gather=%v: datagram %d is not the whole frame", gather, i)
			}
		}
		if gather && rec.gathered != 16 {
			t.Fatalf("%d of 16 datagrams gathered, want all", rec.gathered)
		}
		for _, dst := range []MAC{macOf("10.77.0.11"), Broadcast} {
			want := fillSplitBatch(b, 4, dst, p.mac)
			e.sw.switchFromPort(p, b, 4)
			for i := range want {
				if got := b.bufs[i][encap.HeaderLen : encap.HeaderLen+b.sizes[i]]; !bytes.Equal(got, want[i]) {
					t.Fatalf("gather=%v dst %v: frame %d not made whole before a local delivery", gather, dst, i)
				}
			}
		}
	}
}

func TestSwitchFromPortSplitAllocs(t *testing.T) {
	e, _ := hotPathEngine(t)
	p := e.ports[epKey{"blue", "a"}]
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	for i := range e.sw.tx {
		e.sw.tx[i] = &gatherDiscard{discardConn{closed: make(chan struct{})}}
	}
	b := e.sw.poolFor(p.net.mtu).get()
	fillSplitBatch(b, 64, remote, p.mac)
	e.sw.switchFromPort(p, b, 64)
	if n := testing.AllocsPerRun(100, func() { e.sw.switchFromPort(p, b, 64) }); n != 0 {
		t.Fatalf("switchFromPort of a split batch allocates %.1f times per batch", n)
	}
}

// gatherDiscard is a discardConn that also gathers, sending nothing.
type gatherDiscard struct{ discardConn }

func (c *gatherDiscard) WriteGather(heads, _ [][]byte, _ netip.AddrPort) error {
	c.sent += len(heads)
	return nil
}
