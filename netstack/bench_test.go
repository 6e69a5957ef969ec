package netstack

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// BenchmarkPing measures one ICMP echo frame through Write and its reply
// through Read, the gateway's per-frame cost without any relay.
func BenchmarkPing(b *testing.B) {
	g := newTestGateway(b, nil)
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
	echo := ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, gwPrefix.Addr(), 1, icmpEcho(1, make([]byte, 56))))
	frames := [][]byte{echo}
	bufs := [][]byte{make([]byte, testMTU+14), make([]byte, testMTU+14)}
	sizes := make([]int, 2)
	g.Read(bufs, sizes, 0) // the ARP reply
	b.ReportAllocs()
	b.SetBytes(int64(len(echo)))
	b.ResetTimer()
	for range b.N {
		g.Write(frames)
		if n, _ := g.Read(bufs, sizes, 0); n == 0 {
			b.Fatal("no echo reply")
		}
	}
}

// BenchmarkTCPListen measures bulk TCP from a client stack to a
// ListenTCP listener, both stacks in process and joined by relays.
func BenchmarkTCPListen(b *testing.B) {
	g := newTestGateway(b, nil)
	c := newClient(b)
	connect(b, g, c)
	ln, err := g.ListenTCP(5001)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan int64)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, s)
		s.Close()
		done <- n
	}()
	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(gwPrefix.Addr(), 5001), ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	conn.CloseWrite()
	if n := <-done; n != int64(b.N*len(chunk)) {
		b.Fatalf("received %d bytes, want %d", n, b.N*len(chunk))
	}
	b.StopTimer()
	conn.Close()
	ln.Close()
}

// BenchmarkEgressTCP measures bulk TCP from a client stack through the
// gateway's NAT to a loopback server.
func BenchmarkEgressTCP(b *testing.B) {
	o := newBenchSink(b)
	g := newTestGateway(b, func(cfg *GatewayConfig) {
		cfg.Egress = true
		cfg.Dial = o.dial
	})
	c := newClient(b)
	connect(b, g, c)
	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := conn.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	conn.CloseWrite()
	if n := <-o.done; n != int64(b.N*len(chunk)) {
		b.Fatalf("received %d bytes, want %d", n, b.N*len(chunk))
	}
	b.StopTimer()
	conn.Close()
}

// benchSink is a loopback TCP server that counts what one connection sends.
type benchSink struct {
	ln   net.Listener
	done chan int64
}

func newBenchSink(b *testing.B) *benchSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchSink{ln: ln, done: make(chan int64, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			s.done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		s.done <- n
	}()
	b.Cleanup(func() { ln.Close() })
	return s
}

func (s *benchSink) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, s.ln.Addr().String())
}

// BenchmarkEgressTCPDownload measures bulk TCP from a loopback server
// through the gateway's NAT to a client stack: the gateway's stack is the
// sender, so its outbound queue is on the path.
func BenchmarkEgressTCPDownload(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	chunk := make([]byte, 64<<10)
	total := int64(b.N) * int64(len(chunk))
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for range b.N {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	g := newTestGateway(b, func(cfg *GatewayConfig) {
		cfg.Egress = true
		cfg.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, ln.Addr().String())
		}
	})
	c := newClient(b)
	connect(b, g, c)
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	if n, _ := io.Copy(io.Discard, conn); n != total {
		b.Fatalf("received %d bytes, want %d", n, total)
	}
	b.StopTimer()
	conn.Close()
}

// BenchmarkDialTCPDownload measures bulk TCP from a client stack into a
// connection the gateway dialled (DialContext, as the laptop doors do):
// the gateway's stack is the receiver, so its inbound path (Write, GRO,
// IP and TCP receive) and its ACKs are on the path.
func BenchmarkDialTCPDownload(b *testing.B) {
	g := newTestGateway(b, nil)
	c := newClient(b)
	connect(b, g, c)
	ln, err := gonet.ListenTCP(c.s, c.addr(clientIP, 5002), ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	chunk := make([]byte, 64<<10)
	total := int64(b.N) * int64(len(chunk))
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		for range b.N {
			if _, err := s.Write(chunk); err != nil {
				return
			}
		}
	}()
	conn, err := g.DialContext(context.Background(), "tcp", netip.AddrPortFrom(clientIP, 5002).String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	if n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{conn}, buf); n != total {
		b.Fatalf("received %d bytes, want %d", n, total)
	}
	b.StopTimer()
	conn.Close()
}
