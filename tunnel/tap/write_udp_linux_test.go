package tap

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// TestNativeWriteUDPGroups writes a batch of datagrams of four interleaved
// flows (three IPv4 sockets, one IPv6) into a real TAP, as the switch
// writes a burst of DNS replies, with one datagram of the first flow
// damaged after its checksum. The container's kernel must hand each socket
// its datagrams whole and in order, drop the damaged one (coalescing must
// not launder its checksum), and the writes must have gone out as UDP GSO
// groups.
func TestNativeWriteUDPGroups(t *testing.T) {
	requireRoot(t)
	p := newTestPair(t)
	ipCmd(t, "-n", p.nsA, "addr", "add", "fd00::1/64", "dev", "eth0", "nodad")
	var conns []*net.UDPConn
	err := ns.WithNetNSPath(p.pathA, func(ns.NetNS) error {
		for _, a := range []string{p.addr(1).String() + ":0", p.addr(1).String() + ":0", p.addr(1).String() + ":0", "[fd00::1]:0"} {
			network := "udp4"
			if a[0] == '[' {
				network = "udp6"
			}
			la, err := net.ResolveUDPAddr(network, a)
			if err != nil {
				return err
			}
			c, err := net.ListenUDP(network, la)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	for _, c := range conns {
		defer c.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	const rounds, damaged = 12, 5
	payload := func(c, r int) []byte {
		b := bytes.Repeat([]byte{'.'}, 96)
		copy(b, fmt.Sprintf("flow %d round %d", c, r))
		return b
	}
	src, dst := p.addr(2).As4(), p.addr(1).As4()
	var batch [][]byte
	for r := range rounds {
		for c, conn := range conns {
			s := udpSpec{src: src, dst: dst, sport: 53, dport: uint16(conn.LocalAddr().(*net.UDPAddr).Port),
				df: true, payload: payload(c, r), dstMAC: p.a.cfg.MAC}
			if c == 3 {
				s.v6, s.src, s.dst = true, [4]byte{0, 0, 0, 2}, [4]byte{0, 0, 0, 1}
			}
			f := buildUDP(s)
			if c == 0 && r == damaged {
				f[len(f)-1] ^= 0x40 // after the checksum: the kernel must drop it
			}
			batch = append(batch, f)
		}
	}
	before := p.a.Stats()
	if n, err := p.a.Write(batch); n != len(batch) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	after := p.a.Stats()
	t.Logf("writes %d, frames %d, coalesced %d", after.TxWrites-before.TxWrites,
		after.TxFrames-before.TxFrames, after.TxCoalesced-before.TxCoalesced)
	if after.TxFrames-before.TxFrames != uint64(len(batch)) || after.TxDropped != before.TxDropped {
		t.Errorf("frames written %d of %d, dropped %d", after.TxFrames-before.TxFrames, len(batch), after.TxDropped-before.TxDropped)
	}
	if w := after.TxWrites - before.TxWrites; w > 8 {
		t.Errorf("%d writes for %d datagrams of four flows, want at most 8", w, len(batch))
	}
	buf := make([]byte, 2048)
	for c, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for r := range rounds {
			if c == 0 && r == damaged {
				continue
			}
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("flow %d: round %d: %v", c, r, err)
			}
			if want := payload(c, r); !bytes.Equal(buf[:n], want) {
				t.Fatalf("flow %d: got %q, want %q", c, buf[:n], want)
			}
		}
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, err := conn.Read(buf); err == nil {
			t.Errorf("flow %d: one datagram too many: %q", c, buf[:n])
		}
	}

	t.Run("allocs", func(t *testing.T) {
		allocs := testing.AllocsPerRun(50, func() {
			if _, err := p.a.Write(batch[:8]); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per Write, want 0", allocs)
		}
	})
}
