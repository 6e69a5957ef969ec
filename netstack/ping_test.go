package netstack

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/ether"
	vxip "github.com/vxwire/vxwire/internal/ipv4"
)

// fakeEcho is a destination that answers every echo request at once.
type fakeEcho struct {
	mu     sync.Mutex
	dialed []netip.Addr
}

func (f *fakeEcho) dial(dst netip.Addr) (EchoConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dialed = append(f.dialed, dst)
	return &fakeEchoConn{replies: make(chan []byte, 16), closed: make(chan struct{})}, nil
}

func (f *fakeEcho) dials() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.dialed)
}

type fakeEchoConn struct {
	replies chan []byte
	closed  chan struct{}
	once    sync.Once
}

func (c *fakeEchoConn) Send(seq uint16, data []byte) error {
	m := make([]byte, 2+len(data))
	binary.BigEndian.PutUint16(m, seq)
	copy(m[2:], data)
	c.replies <- m
	return nil
}

func (c *fakeEchoConn) Recv(buf []byte, deadline time.Time) (uint16, []byte, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case m := <-c.replies:
		n := copy(buf, m[2:])
		return binary.BigEndian.Uint16(m), buf[:n], nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-t.C:
		return 0, nil, errDeadline
	}
}

var errDeadline = &net.OpError{Op: "read", Err: net.ErrClosed}

func (c *fakeEchoConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

// echoFrame is an echo request frame from the client to dst with id.
func echoFrame(dst netip.Addr, id, seq uint16, data string) []byte {
	m := icmpEcho(seq, []byte(data))
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], checksum(m))
	return ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, dst, 1, m))
}

// waitFrames reads the gateway until it returned n frames.
func waitFrames(t *testing.T, g *Gateway, n int) [][]byte {
	t.Helper()
	var out [][]byte
	waitFor(t, "frames from the gateway", 5*time.Second, func() bool {
		for _, f := range readNow(t, g) {
			out = append(out, append([]byte(nil), f...))
		}
		return len(out) >= n
	})
	return out
}

func echoGateway(t *testing.T, mod func(*GatewayConfig)) (*Gateway, *fakeEcho) {
	f := new(fakeEcho)
	g := newTestGateway(t, func(c *GatewayConfig) {
		c.Egress, c.DialEcho = true, f.dial
		if mod != nil {
			mod(c)
		}
	})
	return g, f
}

func TestEchoEgress(t *testing.T) {
	leakCheck(t)
	g, f := echoGateway(t, nil)
	g.Write([][]byte{echoFrame(outsideIP, 0x4242, 1, "ping-1"), echoFrame(outsideIP, 0x4242, 2, "ping-2")})
	out := waitFrames(t, g, 2)
	for i, fr := range out {
		if [6]byte(fr[0:6]) != [6]byte(clientMAC) || [6]byte(fr[6:12]) != [6]byte(gwMAC) {
			t.Fatalf("reply %d from %x to %x", i, fr[6:12], fr[0:6])
		}
		e, ok := vxip.ParseEcho(fr[ether.HeaderLen:])
		if !ok || e.Type != vxip.ICMPEchoReply || e.ID != 0x4242 || int(e.Seq) != i+1 ||
			string(e.Data) != "ping-"+string(rune('1'+i)) || e.Src != outsideIP.As4() || e.Dst != clientIP.As4() {
			t.Fatalf("reply %d: %+v, %v", i, e, ok)
		}
	}
	if f.dials() != 1 {
		t.Fatalf("%d flows dialled for one ping session, want 1", f.dials())
	}
	if st := g.Stats(); st.EchoFlowsOpen != 1 || st.EchoFlowsTotal != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEchoEgressDenied: an echo to a refused destination gets
// "administratively prohibited" from the gateway and dials nothing, while
// a port rule (tcp:ADDR:80) leaves echo to that address alone.
func TestEchoEgressDenied(t *testing.T) {
	leakCheck(t)
	other := netip.MustParseAddr("198.18.200.2")
	deny, err := NewEgressPolicy([]EgressRule{
		{Prefix: netip.PrefixFrom(outsideIP, 32)},
		{Prefix: netip.PrefixFrom(other, 32), Port: 80, Proto: ProtoTCP},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, f := echoGateway(t, func(c *GatewayConfig) { c.Deny = deny })
	for _, dst := range []netip.Addr{outsideIP, netip.MustParseAddr("169.254.169.254")} {
		req := echoFrame(dst, 7, 1, "denied")
		g.Write([][]byte{req})
		fr := waitFrames(t, g, 1)[0]
		ip := fr[ether.HeaderLen:]
		if ip[9] != 1 || [4]byte(ip[12:16]) != gwPrefix.Addr().As4() || ip[20] != 3 || ip[21] != 13 {
			t.Fatalf("%s: reply % x, want admin prohibited from the gateway", dst, ip[:24])
		}
		if string(ip[28:48]) != string(req[ether.HeaderLen:ether.HeaderLen+20]) {
			t.Fatalf("%s: reply does not quote the request", dst)
		}
	}
	if f.dials() != 0 {
		t.Fatalf("%d dials to refused destinations", f.dials())
	}
	g.Write([][]byte{echoFrame(other, 7, 1, "allowed")})
	waitFrames(t, g, 1)
	if f.dials() != 1 {
		t.Fatal("echo to an address with only a port rule was not relayed")
	}
	if st := g.Stats(); st.DropsEgressDenied != 2 {
		t.Fatalf("denied %d, want 2", st.DropsEgressDenied)
	}
}

// TestEchoEgressBounded: one container's echo flows stop at
// MaxFlowsPerSource (refused), flows end after UDPIdle, and the slot is
// free again.
func TestEchoEgressBounded(t *testing.T) {
	leakCheck(t)
	g, f := echoGateway(t, func(c *GatewayConfig) { c.MaxFlowsPerSource, c.UDPIdle = 2, 300*time.Millisecond })
	g.Write([][]byte{echoFrame(outsideIP, 1, 1, "a"), echoFrame(outsideIP, 2, 1, "b"), echoFrame(outsideIP, 3, 1, "c")})
	out := waitFrames(t, g, 3)
	refused := 0
	for _, fr := range out {
		if fr[ether.HeaderLen+20] == 3 && fr[ether.HeaderLen+21] == 13 {
			refused++
		}
	}
	if refused != 1 || f.dials() != 2 || g.Stats().DropsSourceLimit != 1 {
		t.Fatalf("refused %d, dialled %d, stats %+v; want 1 refused and 2 flows", refused, f.dials(), g.Stats())
	}
	waitFor(t, "idle flows to close", 5*time.Second, func() bool { return g.Stats().EchoFlowsOpen == 0 })
	g.Write([][]byte{echoFrame(outsideIP, 3, 2, "c")})
	waitFrames(t, g, 1)
	if f.dials() != 3 {
		t.Fatalf("after idle: %d dials, want 3", f.dials())
	}
}

// TestDialEchoLoopback pings 127.0.0.1 through the real host side, with a
// ping socket or, where ping_group_range refuses it, a raw socket.
func TestDialEchoLoopback(t *testing.T) {
	c, err := DialEcho(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Skipf("no icmp socket here (neither ping_group_range nor CAP_NET_RAW): %v", err)
	}
	defer c.Close()
	if err := c.Send(9, []byte("vxwire")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	seq, data, err := c.Recv(buf, time.Now().Add(5*time.Second))
	if err != nil || seq != 9 || string(data) != "vxwire" {
		t.Fatalf("Recv = %d %q %v", seq, data, err)
	}
}
