package netstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// leakCheck verifies at the end of the test, after every other cleanup,
// that no goroutine outlives the gateways and stacks it built.
func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func TestNewGatewayRejectsBadConfig(t *testing.T) {
	ok := GatewayConfig{MAC: gwMAC, Addr: gwPrefix, MTU: testMTU}
	tests := []struct {
		name string
		mod  func(*GatewayConfig)
		want string
	}{
		{"short mac", func(c *GatewayConfig) { c.MAC = c.MAC[:4] }, "mac"},
		{"multicast mac", func(c *GatewayConfig) { c.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} }, "mac"},
		{"zero mac", func(c *GatewayConfig) { c.MAC = make(net.HardwareAddr, 6) }, "mac"},
		{"no address", func(c *GatewayConfig) { c.Addr = netip.Prefix{} }, "ipv4"},
		{"ipv6", func(c *GatewayConfig) { c.Addr = netip.MustParsePrefix("fd00::1/64") }, "ipv4"},
		{"host prefix", func(c *GatewayConfig) { c.Addr = netip.MustParsePrefix("10.0.0.1/32") }, "prefix length"},
		{"network address", func(c *GatewayConfig) { c.Addr = netip.MustParsePrefix("10.0.0.0/24") }, "broadcast"},
		{"broadcast address", func(c *GatewayConfig) { c.Addr = netip.MustParsePrefix("10.0.0.255/24") }, "broadcast"},
		{"small mtu", func(c *GatewayConfig) { c.MTU = 100 }, "mtu"},
		{"huge mtu", func(c *GatewayConfig) { c.MTU = 70000 }, "mtu"},
		{"negative batch", func(c *GatewayConfig) { c.Batch = -1 }, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mod(&cfg)
			g, err := NewGateway(cfg, nil)
			if err == nil {
				g.Close()
				t.Fatal("NewGateway accepted a bad config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestGatewayDefaults(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	if g.BatchSize() != defaultBatch || g.MTU() != testMTU {
		t.Fatalf("BatchSize %d MTU %d", g.BatchSize(), g.MTU())
	}
}

func TestPingGateway(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	c := newClient(t)
	connect(t, g, c)

	if err := c.ping(gwPrefix.Addr(), 5*time.Second); err != nil {
		t.Fatalf("ping gateway: %v", err)
	}
	neigh, e := c.s.Neighbors(1, ipv4.ProtocolNumber)
	if e != nil {
		t.Fatalf("Neighbors: %s", e)
	}
	found := false
	for _, n := range neigh {
		if n.Addr == tcpip.AddrFrom4(gwPrefix.Addr().As4()) {
			found = true
			if net.HardwareAddr(n.LinkAddr).String() != gwMAC.String() {
				t.Fatalf("gateway resolved to %v, want %v", net.HardwareAddr(n.LinkAddr), gwMAC)
			}
		}
	}
	if !found {
		t.Fatal("client has no neighbor entry for the gateway")
	}
	// Write counts its frames after the stack has handled them, so the
	// reply can reach the client before the echo request is counted.
	waitFor(t, "ARP and echo counted each way", 5*time.Second, func() bool {
		st := g.Stats()
		return st.FramesIn >= 2 && st.FramesOut >= 2
	})
}

func TestFrameFilter(t *testing.T) {
	leakCheck(t)
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 9}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	echo := icmpEcho(1, []byte("filter"))
	echoReply := append([]byte(nil), echo...)
	echoReply[0] = 0
	binary.BigEndian.PutUint16(echoReply[2:], 0)
	binary.BigEndian.PutUint16(echoReply[2:], checksum(echoReply))
	tests := []struct {
		name    string
		egress  bool
		frame   []byte
		replies int
		stat    func(GatewayStats) uint64
	}{
		{"arp for gateway", false, arpRequest(clientMAC, clientIP, gwPrefix.Addr()), 1, func(s GatewayStats) uint64 { return s.FramesIn }},
		{"arp for another address", true, arpRequest(clientMAC, clientIP, netip.MustParseAddr("10.77.0.9")), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"arp for outside address", true, arpRequest(clientMAC, clientIP, outsideIP), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"echo to gateway", false, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, gwPrefix.Addr(), 1, echo)), 1, func(s GatewayStats) uint64 { return s.FramesIn }},
		{"echo reply to outside", true, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, outsideIP, 1, echoReply)), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"echo to outside, egress off", false, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, outsideIP, 1, echo)), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"echo to another container", true, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, netip.MustParseAddr("10.77.0.9"), 1, echo)), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"udp to loopback", true, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, netip.MustParseAddr("127.0.0.1"), 17, make([]byte, 8))), 0, func(s GatewayStats) uint64 { return s.DropsEgressDenied }},
		{"udp to this network", true, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, netip.MustParseAddr("0.0.0.1"), 17, make([]byte, 8))), 0, func(s GatewayStats) uint64 { return s.DropsEgressDenied }},
		{"udp to multicast via gateway mac", true, ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, netip.MustParseAddr("239.1.1.1"), 17, make([]byte, 8))), 0, func(s GatewayStats) uint64 { return s.DropsEgressDenied }},
		{"udp to broadcast", true, ethFrame(bcast, clientMAC, 0x0800, ipv4Packet(clientIP, netip.MustParseAddr("255.255.255.255"), 17, make([]byte, 8))), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"frame for another mac", false, ethFrame(other, clientMAC, 0x0800, ipv4Packet(clientIP, gwPrefix.Addr(), 1, echo)), 0, func(s GatewayStats) uint64 { return s.DropsFiltered }},
		{"ipv6", false, ethFrame(gwMAC, clientMAC, 0x86dd, make([]byte, 40)), 0, func(s GatewayStats) uint64 { return s.DropsIPv6 }},
		{"truncated", false, []byte{1, 2, 3}, 0, func(s GatewayStats) uint64 { return s.DropsMalformed }},
		{"truncated ipv4", false, ethFrame(gwMAC, clientMAC, 0x0800, []byte{0x45, 0}), 0, func(s GatewayStats) uint64 { return s.DropsMalformed }},
		{"unknown ethertype", false, ethFrame(gwMAC, clientMAC, 0x88cc, make([]byte, 46)), 0, func(s GatewayStats) uint64 { return s.DropsMalformed }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t, func(c *GatewayConfig) { c.Egress = tc.egress })
			// The client must be known for the echo reply to leave
			// without an ARP round trip of its own.
			g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
			readNow(t, g)
			before := tc.stat(g.Stats())
			if n, err := g.Write([][]byte{tc.frame}); n != 1 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			out := readNow(t, g)
			if len(out) != tc.replies {
				t.Fatalf("got %d frames, want %d", len(out), tc.replies)
			}
			if got := tc.stat(g.Stats()); got != before+1 {
				t.Fatalf("counter went %d → %d, want +1 (%+v)", before, got, g.Stats())
			}
			for _, f := range out {
				checkReply(t, tc.frame, f)
			}
		})
	}
}

// checkReply checks the ARP and echo replies of TestFrameFilter.
func checkReply(t *testing.T, req, rep []byte) {
	t.Helper()
	if !bytes.Equal(rep[0:6], clientMAC) || !bytes.Equal(rep[6:12], gwMAC) {
		t.Fatalf("reply addressed %x from %x", rep[0:6], rep[6:12])
	}
	gw := gwPrefix.Addr().As4()
	switch {
	case rep[12] == 0x08 && rep[13] == 0x06:
		if rep[21] != 2 || !bytes.Equal(rep[22:28], gwMAC) || !bytes.Equal(rep[28:32], gw[:]) || !bytes.Equal(rep[38:42], req[28:32]) {
			t.Fatalf("bad arp reply % x", rep[14:42])
		}
	case rep[12] == 0x08 && rep[13] == 0x00:
		ip := rep[14:]
		if ip[9] != 1 || ip[20] != 0 || !bytes.Equal(ip[28:], req[14+28:]) {
			t.Fatalf("bad echo reply % x", ip)
		}
	default:
		t.Fatalf("unexpected reply ethertype %x", rep[12:14])
	}
}

func TestOutboundARPSenderIsGateway(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, func(c *GatewayConfig) { c.Egress = true })
	frame := arpRequest(gwMAC, outsideIP, clientIP)
	g.fixARP(frame)
	gw := gwPrefix.Addr().As4()
	if !bytes.Equal(frame[28:32], gw[:]) {
		t.Fatalf("sender address %v not rewritten", frame[28:32])
	}
}

func TestUDPThroughListenUDP(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	c := newClient(t)
	connect(t, g, c)

	pc, err := g.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("ReadFrom after close: %v, want net.ErrClosed", err)
				}
				return
			}
			pc.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()

	conn, err := gonet.DialUDP(c.s, nil, ptr(c.addr(gwPrefix.Addr(), 53)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 3 {
		msg := []byte{'q', byte('0' + i)}
		if _, err := conn.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "echo:"+string(msg) {
			t.Fatalf("got %q", buf[:n])
		}
	}
	pc.Close()
	<-done
}

func TestTCPThroughListenTCP(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	c := newClient(t)
	connect(t, g, c)

	ln, err := g.ListenTCP(8080)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		io.Copy(s, s) // echo until the client half-closes
	}()

	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(gwPrefix.Addr(), 8080), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echoTransfer(t, conn, 1<<20)
}

// echoTransfer writes n random bytes, half-closes, reads the echo and
// compares SHA-256 digests.
func echoTransfer(t *testing.T, conn net.Conn, n int) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	data := make([]byte, n)
	rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		if err == nil {
			err = conn.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	h := sha256.New()
	got, err := io.Copy(h, conn)
	if err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if got != int64(n) || !bytes.Equal(h.Sum(nil), sha(data)) {
		t.Fatalf("echo of %d bytes: got %d bytes, digest mismatch %v", n, got, !bytes.Equal(h.Sum(nil), sha(data)))
	}
}

func sha(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func ptr[T any](v T) *T { return &v }

func TestGatewayDialsContainer(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	c := newClient(t)
	connect(t, g, c)

	ln, err := gonet.ListenTCP(c.s, c.addr(clientIP, 9000), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		io.Copy(s, s)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := g.DialContext(ctx, "tcp", "10.77.0.2:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.LocalAddr().String(); !strings.HasPrefix(got, "10.77.0.1:") {
		t.Fatalf("dialled from %s, want the gateway address", got)
	}
	echoTransfer(t, conn, 64<<10)

	if _, err := g.DialContext(ctx, "sctp", "10.77.0.2:9000"); err == nil {
		t.Fatal("DialContext accepted sctp")
	}
	if _, err := g.DialContext(ctx, "tcp", "[fd00::1]:9000"); err == nil {
		t.Fatal("DialContext accepted ipv6")
	}
}

func TestCloseUnblocksEverything(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	ln, err := g.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := g.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	go func() { errs <- g.Wait() }()
	go func() { _, err := ln.Accept(); errs <- err }()
	go func() { _, _, err := pc.ReadFrom(make([]byte, 10)); errs <- err }()

	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for range 3 {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("unblocked with %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Wait, Accept and ReadFrom")
		}
	}
	if _, err := g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, err := g.Read(make([][]byte, 1), make([]int, 1), 0); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := g.ListenTCP(81); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ListenTCP after Close: %v", err)
	}
}

func TestOutboundQueueBounded(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
	echo := ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, gwPrefix.Addr(), 1, icmpEcho(1, make([]byte, 32))))
	frames := make([][]byte, outQueueLen+10)
	for i := range frames {
		frames[i] = echo
	}
	g.Write(frames)
	if got := g.Stats().DropsQueueFull; got != 11 {
		t.Fatalf("DropsQueueFull = %d, want 11 (queue %d, %d replies + 1 arp)", got, outQueueLen, len(frames))
	}
	total := 0
	for {
		out := readNow(t, g)
		if len(out) == 0 {
			break
		}
		if len(out) > g.BatchSize() {
			t.Fatalf("Read returned %d > BatchSize", len(out))
		}
		total += len(out)
	}
	if total != outQueueLen {
		t.Fatalf("drained %d frames, want %d", total, outQueueLen)
	}
}

func TestReadDropsOversize(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
	bufs := [][]byte{make([]byte, 20)}
	n, err := g.Read(bufs, make([]int, 1), 0)
	if n != 0 || err != nil || g.Stats().DropsOversize != 1 {
		t.Fatalf("Read into a short buffer = %d, %v, stats %+v", n, err, g.Stats())
	}
}

func TestReadHeadroom(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
	const off = 50
	bufs := [][]byte{make([]byte, off+testMTU+14)}
	sizes := []int{0}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	n, err := g.Read(bufs, sizes, off)
	if n != 1 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	if !bytes.Equal(bufs[0][:off], make([]byte, off)) {
		t.Fatal("Read wrote into the headroom")
	}
	if f := bufs[0][off : off+sizes[0]]; sizes[0] != 42 || !bytes.Equal(f[0:6], clientMAC) {
		t.Fatalf("arp reply of %d bytes: % x", sizes[0], f)
	}
}

// TestConcurrentWriters checks Write's concurrency contract under -race.
func TestConcurrentWriters(t *testing.T) {
	leakCheck(t)
	g := newTestGateway(t, nil)
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
	echo := ethFrame(gwMAC, clientMAC, 0x0800, ipv4Packet(clientIP, gwPrefix.Addr(), 1, icmpEcho(1, make([]byte, 32))))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		bufs := [][]byte{make([]byte, 2000), make([]byte, 2000)}
		sizes := make([]int, 2)
		for {
			select {
			case <-stop:
				return
			default:
			}
			g.Read(bufs, sizes, 0)
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				g.Write([][]byte{echo})
			}
		}()
	}
	wg.Wait()
	close(stop)
	if st := g.Stats(); st.FramesIn != 801 {
		t.Fatalf("FramesIn = %d, want 801", st.FramesIn)
	}
}
