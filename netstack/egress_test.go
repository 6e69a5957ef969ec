package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// outside is the "internet" of the egress tests: loopback TCP and UDP echo
// servers, and a dialer that records what the gateway asked for and
// redirects it to them.
type outside struct {
	tcp net.Listener
	udp net.PacketConn

	ended chan struct{} // one token per TCP connection whose echo ended

	mu    sync.Mutex
	dials []string // "network address" as the gateway asked
	conns []net.Conn
}

func newOutside(t *testing.T) *outside {
	t.Helper()
	o := &outside{ended: make(chan struct{}, 100)}
	var err error
	if o.tcp, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if o.udp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := o.tcp.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.conns = append(o.conns, c)
			o.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				o.ended <- struct{}{}
			}()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := o.udp.ReadFrom(buf)
			if err != nil {
				return
			}
			o.udp.WriteTo(append([]byte("pong:"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		o.tcp.Close()
		o.udp.Close()
		o.mu.Lock()
		for _, c := range o.conns {
			c.Close()
		}
		o.mu.Unlock()
		wg.Wait()
	})
	return o
}

func (o *outside) dial(ctx context.Context, network, address string) (net.Conn, error) {
	o.mu.Lock()
	o.dials = append(o.dials, network+" "+address)
	o.mu.Unlock()
	var d net.Dialer
	switch network {
	case "tcp":
		return d.DialContext(ctx, network, o.tcp.Addr().String())
	case "udp":
		return d.DialContext(ctx, network, o.udp.LocalAddr().String())
	}
	return nil, errors.New("unexpected network " + network)
}

func (o *outside) dialed() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.dials...)
}

func egressPair(t *testing.T, o *outside, mod func(*GatewayConfig)) (*Gateway, *client) {
	t.Helper()
	g := newTestGateway(t, func(c *GatewayConfig) {
		c.Egress = true
		if o != nil {
			c.Dial = o.dial
		}
		if mod != nil {
			mod(c)
		}
	})
	c := newClient(t)
	connect(t, g, c)
	return g, c
}

func TestEgressTCP(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, nil)

	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	if got := o.dialed(); len(got) != 1 || got[0] != "tcp 198.18.200.1:80" {
		t.Fatalf("gateway dialled %q", got)
	}
	// The echo, half-close included, proves both directions and FIN
	// propagation each way.
	echoTransfer(t, conn, 1<<20)
	conn.Close()
	st := g.Stats()
	if st.TCPFlowsTotal != 1 {
		t.Fatalf("TCPFlowsTotal = %d", st.TCPFlowsTotal)
	}
	waitFor(t, "the flow to close", 5*time.Second, func() bool { return g.Stats().TCPFlowsOpen == 0 })
}

func TestEgressTCPDialFailureResets(t *testing.T) {
	leakCheck(t)
	g, c := egressPair(t, nil, func(cfg *GatewayConfig) {
		cfg.Dial = func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("connection refused")
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := gonet.DialContextTCP(ctx, c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("dial = %v (ctx %v), want a prompt refusal", err, ctx.Err())
	}
	if st := g.Stats(); st.DialErrors != 1 || st.TCPFlowsTotal != 1 {
		t.Fatalf("stats %+v", st)
	}
	waitFor(t, "the refused flow to be released", 5*time.Second, func() bool { return g.Stats().TCPFlowsOpen == 0 })
}

func TestEgressUDP(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, func(cfg *GatewayConfig) { cfg.UDPIdle = 300 * time.Millisecond })

	dst := netip.MustParseAddr("198.18.200.2")
	conn, err := gonet.DialUDP(c.s, nil, ptr(c.addr(dst, 53)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"one", "two", "three"} {
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "pong:"+msg {
			t.Fatalf("got %q", buf[:n])
		}
	}
	if got := o.dialed(); len(got) != 1 || got[0] != "udp 198.18.200.2:53" {
		t.Fatalf("gateway dialled %q, want one flow", got)
	}
	if st := g.Stats(); st.UDPFlowsOpen != 1 || st.UDPFlowsTotal != 1 {
		t.Fatalf("stats %+v", st)
	}
	waitFor(t, "the idle udp flow to expire", 5*time.Second, func() bool { return g.Stats().UDPFlowsOpen == 0 })

	// A new datagram after expiry opens a new flow.
	conn.Write([]byte("again"))
	buf := make([]byte, 100)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "pong:again" {
		t.Fatalf("after expiry: %q, %v", buf[:n], err)
	}
	if st := g.Stats(); st.UDPFlowsTotal != 2 {
		t.Fatalf("UDPFlowsTotal = %d, want 2", st.UDPFlowsTotal)
	}
}

func TestEgressTCPIdleTimeout(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, func(cfg *GatewayConfig) { cfg.TCPIdle = 200 * time.Millisecond })
	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection delivered data")
	} else if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("idle connection was not closed: %v", err)
	}
	waitFor(t, "the flow to close", 5*time.Second, func() bool { return g.Stats().TCPFlowsOpen == 0 })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestEgressDisabled(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g := newTestGateway(t, func(c *GatewayConfig) { c.Dial = o.dial })
	c := newClient(t)
	connect(t, g, c)

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if conn, err := gonet.DialContextTCP(ctx, c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber); err == nil {
		conn.Close()
		t.Fatal("connected to an outside address with egress off")
	}
	if got := o.dialed(); len(got) != 0 {
		t.Fatalf("gateway dialled %q with egress off", got)
	}
	if st := g.Stats(); st.DropsFiltered == 0 || st.TCPFlowsTotal != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEgressNeverForwardsInsideSubnet(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, nil)

	// Another container's address: the gateway must not answer its ARP,
	// so the client cannot even send the SYN.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if conn, err := gonet.DialContextTCP(ctx, c.s, c.addr(netip.MustParseAddr("10.77.0.9"), 80), ipv4.ProtocolNumber); err == nil {
		conn.Close()
		t.Fatal("connected to another container's address through the gateway")
	}
	// The gateway itself, on a port nobody listens on: RST, no dial.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if conn, err := gonet.DialContextTCP(ctx2, c.s, c.addr(gwPrefix.Addr(), 81), ipv4.ProtocolNumber); err == nil || ctx2.Err() != nil {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("dial to a closed gateway port = %v, want a prompt refusal", err)
	}
	// Ping to an outside address gets no answer.
	if err := c.ping(outsideIP, 300*time.Millisecond); err == nil {
		t.Fatal("the gateway answered a ping for an outside address")
	}
	if got := o.dialed(); len(got) != 0 {
		t.Fatalf("gateway dialled %q", got)
	}
	if st := g.Stats(); st.DropsFiltered == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEgressFlowLimit(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, func(cfg *GatewayConfig) { cfg.MaxFlows = 1 })

	first, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if conn, err := gonet.DialContextTCP(ctx, c.s, c.addr(outsideIP, 81), ipv4.ProtocolNumber); err == nil {
		conn.Close()
		t.Fatal("second flow accepted past MaxFlows=1")
	}
	if st := g.Stats(); st.DropsFlowLimit == 0 || st.TCPFlowsTotal != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCloseEndsEgressFlows(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, nil)

	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	udp, err := gonet.DialUDP(c.s, nil, ptr(c.addr(outsideIP, 53)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udp.Write([]byte("x"))
	udp.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := udp.Read(buf); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() {
		g.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung with open egress flows")
	}
	// The host side of the TCP flow sees the gateway go away.
	select {
	case <-o.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("host side of the flow still open after Close")
	}
	if st := g.Stats(); st.TCPFlowsOpen != 0 || st.UDPFlowsOpen != 0 {
		t.Fatalf("flows open after Close: %+v", st)
	}
}
