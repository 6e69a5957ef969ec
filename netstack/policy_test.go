package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

func TestEgressPolicyDenies(t *testing.T) {
	rules := []EgressRule{
		{Prefix: netip.MustParsePrefix("198.18.0.2/32")},
		{Prefix: netip.MustParsePrefix("198.18.0.1/32"), Port: 7946, Proto: ProtoTCP},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Port: 4789, Proto: ProtoUDP},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Port: 443},
		{Prefix: netip.MustParsePrefix("192.0.2.77/24")}, // masked by Set
	}
	p, err := NewEgressPolicy(rules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		proto Proto
		dst   string
		want  bool
	}{
		{ProtoTCP, "198.18.0.2:1", true},
		{ProtoUDP, "198.18.0.2:53", true},
		{ProtoTCP, "198.18.0.3:80", false},
		{ProtoTCP, "198.18.0.1:7946", true},
		{ProtoUDP, "198.18.0.1:7946", false},
		{ProtoTCP, "198.18.0.1:7947", false},
		{ProtoUDP, "8.8.8.8:4789", true},
		{ProtoTCP, "8.8.8.8:4789", false},
		{ProtoTCP, "203.0.113.9:443", true},
		{ProtoUDP, "203.0.113.9:443", true},
		{ProtoTCP, "203.0.113.9:80", false},
		{ProtoTCP, "192.0.2.1:80", true},
		{ProtoTCP, "192.0.3.1:80", false},
		// Built-in classes.
		{ProtoTCP, "127.0.0.1:22", true},
		{ProtoTCP, "0.0.0.0:22", true},
		{ProtoTCP, "169.254.169.254:80", true},
		{ProtoUDP, "224.0.0.251:5353", true},
		{ProtoUDP, "255.255.255.255:67", true},
		{ProtoTCP, "[2001:db8::1]:80", true},
	}
	for _, tc := range tests {
		if got := p.Denies(tc.proto, netip.MustParseAddrPort(tc.dst)); got != tc.want {
			t.Errorf("Denies(%d, %s) = %v, want %v", tc.proto, tc.dst, got, tc.want)
		}
	}
	var none *EgressPolicy
	if none.Denies(ProtoTCP, netip.MustParseAddrPort("198.18.0.2:1")) || !none.Denies(ProtoTCP, netip.MustParseAddrPort("169.254.169.254:80")) {
		t.Error("a nil policy must refuse exactly the built-in classes")
	}

	// A bad list leaves the old one in force.
	if err := p.Set([]EgressRule{{Prefix: netip.MustParsePrefix("2001:db8::/32")}}); err == nil {
		t.Fatal("Set took an IPv6 prefix")
	}
	if err := p.Set([]EgressRule{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Proto: 1}}); err == nil {
		t.Fatal("Set took protocol 1")
	}
	if !p.Denies(ProtoTCP, netip.MustParseAddrPort("198.18.0.2:1")) || len(p.Rules()) != len(rules) {
		t.Fatal("a refused Set changed the policy")
	}
	if err := p.Set(nil); err != nil || p.Denies(ProtoTCP, netip.MustParseAddrPort("198.18.0.2:1")) {
		t.Fatalf("Set(nil) = %v; the old rules still apply", err)
	}
}

func TestEgressRuleString(t *testing.T) {
	for r, want := range map[EgressRule]string{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")}:                                 "10.0.0.0/8",
		{Prefix: netip.MustParsePrefix("10.0.0.1/32"), Port: 22}:                      "10.0.0.1/32:22",
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Port: 4789, Proto: ProtoUDP}:     "udp:0.0.0.0/0:4789",
		{Prefix: netip.MustParsePrefix("198.18.0.1/32"), Port: 7946, Proto: ProtoTCP}: "tcp:198.18.0.1/32:7946",
	} {
		if got := r.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}

// denyOutside is a policy refusing outsideIP, the tests' "host" address,
// and UDP to port 4789 anywhere.
func denyOutside(t *testing.T) *EgressPolicy {
	t.Helper()
	p, err := NewEgressPolicy([]EgressRule{
		{Prefix: netip.PrefixFrom(outsideIP, 32)},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Port: 4789, Proto: ProtoUDP},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEgressDeniedTCPResets: a connection to a refused address fails at
// once with "connection refused" and nothing is dialled, while the
// neighbouring address is reached.
func TestEgressDeniedTCPResets(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, func(cfg *GatewayConfig) { cfg.Deny = denyOutside(t) })
	for _, dst := range []netip.Addr{outsideIP, netip.MustParseAddr("169.254.169.254")} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		conn, err := gonet.DialContextTCP(ctx, c.s, c.addr(dst, 80), ipv4.ProtocolNumber)
		cancel()
		if err == nil {
			conn.Close()
			t.Fatalf("connected to refused %s", dst)
		}
		if !strings.Contains(err.Error(), "refused") || time.Since(start) > time.Second {
			t.Fatalf("dial %s = %v after %v, want connection refused at once", dst, err, time.Since(start))
		}
	}
	if got := o.dialed(); len(got) != 0 {
		t.Fatalf("gateway dialled %q", got)
	}
	if st := g.Stats(); st.DropsEgressDenied != 2 || st.TCPFlowsTotal != 0 {
		t.Fatalf("stats %+v, want 2 egress refusals and no flow", st)
	}
	// The probe: the neighbouring address works.
	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(netip.MustParseAddr("198.18.200.2"), 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("allowed destination: %v", err)
	}
	echoTransfer(t, conn, 1000)
	conn.Close()
}

// TestAbortDenied: flows open to a destination the policy refuses later
// end when AbortDenied is called; others stay.
func TestAbortDenied(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	deny := new(EgressPolicy)
	g, c := egressPair(t, o, func(cfg *GatewayConfig) { cfg.Deny = deny })
	doomed, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer doomed.Close()
	other := netip.MustParseAddr("198.18.200.2")
	kept, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(other, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if n := g.AbortDenied(); n != 0 {
		t.Fatalf("AbortDenied ended %d flows before the policy changed", n)
	}
	if err := deny.Set([]EgressRule{{Prefix: netip.PrefixFrom(outsideIP, 32)}}); err != nil {
		t.Fatal(err)
	}
	if n := g.AbortDenied(); n != 1 {
		t.Fatalf("AbortDenied ended %d flows, want 1", n)
	}
	doomed.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := doomed.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("refused flow still open: %v", err)
	}
	echoTransfer(t, kept, 1000)
	if st := g.Stats(); st.DropsEgressDenied != 1 {
		t.Fatalf("stats %+v, want the ended flow counted", st)
	}
}

// TestEgressDeniedUDPUnreachable writes UDP frames by hand: a refused
// destination is answered with an ICMP port unreachable from that
// address, quoting the datagram, and nothing is dialled.
func TestEgressDeniedUDPUnreachable(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g := newTestGateway(t, func(c *GatewayConfig) { c.Egress, c.Dial, c.Deny = true, o.dial, denyOutside(t) })
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr())})
	readNow(t, g)

	for _, dst := range []netip.AddrPort{
		netip.AddrPortFrom(outsideIP, 53),                         // a refused address
		netip.MustParseAddrPort("198.18.200.2:4789"),              // the VXLAN port anywhere
		netip.MustParseAddrPort("169.254.169.254:53"),             // built in
		netip.AddrPortFrom(netip.MustParseAddr("198.18.0.9"), 22), // allowed: the control
	} {
		frame := udpFrame(netip.AddrPortFrom(clientIP, 40000), dst, []byte("vxlan?"))
		g.Write([][]byte{frame})
		if dst.Port() == 22 {
			waitFor(t, "the allowed flow", 5*time.Second, func() bool { return len(o.dialed()) == 1 })
			continue
		}
		out := readNow(t, g)
		if len(out) != 1 {
			t.Fatalf("%s: got %d frames, want one ICMP error", dst, len(out))
		}
		ip := out[0][14:]
		a := dst.Addr().As4()
		if ip[9] != 1 || !bytes.Equal(ip[12:16], a[:]) || ip[20] != 3 || ip[21] != 3 || !bytes.Equal(ip[28:], frame[14:14+len(ip)-28]) {
			t.Fatalf("%s: reply % x, want ICMP port unreachable from the destination quoting the datagram", dst, ip)
		}
	}
	if got := o.dialed(); len(got) != 1 || got[0] != "udp 198.18.0.9:22" {
		t.Fatalf("gateway dialled %q, want only the allowed flow", got)
	}
	if st := g.Stats(); st.DropsEgressDenied != 3 {
		t.Fatalf("stats %+v, want 3 egress refusals", st)
	}
}

// TestEgressSourceLimit: one container at MaxFlowsPerSource gets a RST
// (TCP) or an ICMP error (UDP) for its next flow, while another container
// of the same network still opens flows.
func TestEgressSourceLimit(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g := newTestGateway(t, func(c *GatewayConfig) { c.Egress, c.Dial, c.MaxFlowsPerSource = true, o.dial, 2 })
	other := netip.MustParseAddr("10.77.0.3")
	otherMAC := net.HardwareAddr{0x02, 0x76, 0x0a, 0x4d, 0x00, 0x03}
	g.Write([][]byte{arpRequest(clientMAC, clientIP, gwPrefix.Addr()), arpRequest(otherMAC, other, gwPrefix.Addr())})
	readNow(t, g)
	dst := netip.AddrPortFrom(outsideIP, 80)

	// answer sends frame and returns the first reply to it.
	answer := func(frame []byte) []byte {
		t.Helper()
		g.Write([][]byte{frame})
		var got []byte
		waitFor(t, "an answer", 5*time.Second, func() bool {
			if out := readNow(t, g); len(out) > 0 {
				got = out[0]
			}
			return got != nil
		})
		return got
	}
	const synAck, rstAck = 0x12, 0x14
	for i := range 2 {
		rep := answer(tcpSYNFrame(clientMAC, netip.AddrPortFrom(clientIP, uint16(40000+i)), dst))
		if flags := rep[14+20+13]; flags != synAck {
			t.Fatalf("flow %d: flags %#x, want SYN-ACK", i, flags)
		}
	}
	rep := answer(tcpSYNFrame(clientMAC, netip.AddrPortFrom(clientIP, 40002), dst))
	if flags := rep[14+20+13]; flags != rstAck {
		t.Fatalf("third flow of one container: flags %#x, want RST", flags)
	}
	rep = answer(tcpSYNFrame(otherMAC, netip.AddrPortFrom(other, 40000), dst))
	if flags := rep[14+20+13]; flags != synAck || !bytes.Equal(rep[0:6], otherMAC) {
		t.Fatalf("another container: flags %#x to %x, want SYN-ACK", flags, rep[0:6])
	}

	// UDP, the same way.
	for i := range 2 {
		g.Write([][]byte{udpFrame(netip.AddrPortFrom(clientIP, uint16(41000+i)), dst, []byte("x"))})
	}
	waitFor(t, "two udp flows", 5*time.Second, func() bool { return g.Stats().UDPFlowsOpen == 2 })
	// The outside echoes the first two flows' datagrams, and an echo may
	// still be on its way: the answer to the third flow is the first
	// frame that is not such an echo.
	g.Write([][]byte{udpFrame(netip.AddrPortFrom(clientIP, 41002), dst, []byte("x"))})
	rep = nil
	waitFor(t, "an answer to the third udp flow", 5*time.Second, func() bool {
		for _, f := range readNow(t, g) {
			if ip := f[14:]; ip[9] == 17 && binary.BigEndian.Uint16(ip[22:24]) != 41002 {
				continue
			}
			rep = f
			return true
		}
		return false
	})
	if ip := rep[14:]; ip[9] != 1 || ip[20] != 3 {
		t.Fatalf("third udp flow of one container: reply % x, want ICMP unreachable", ip[:24])
	}
	g.Write([][]byte{udpFrameFrom(otherMAC, netip.AddrPortFrom(other, 41000), dst, []byte("x"))})
	waitFor(t, "the other container's udp flow", 5*time.Second, func() bool { return g.Stats().UDPFlowsOpen == 3 })
	if st := g.Stats(); st.DropsSourceLimit != 2 || st.TCPFlowsTotal != 3 {
		t.Fatalf("stats %+v, want 2 source-limit refusals and 3 TCP flows", st)
	}
}

// TestEgressUDPTooLarge: a datagram over MaxUDPDatagram (fragmented by the
// client) is dropped and counted, not relayed cut short; the flow goes on.
func TestEgressUDPTooLarge(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	g, c := egressPair(t, o, nil)
	conn, err := gonet.DialUDP(c.s, nil, ptr(c.addr(outsideIP, 53)), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(make([]byte, MaxUDPDatagram+1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the large datagram to be counted", 5*time.Second, func() bool { return g.Stats().DropsUDPTooLarge == 1 })
	if _, err := conn.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "pong:small" {
		t.Fatalf("after the large datagram: %q, %v", buf[:n], err)
	}
}

// udpFrame is a UDP datagram from the test client's MAC to the gateway.
func udpFrame(src, dst netip.AddrPort, payload []byte) []byte {
	return udpFrameFrom(clientMAC, src, dst, payload)
}

// udpFrameFrom is a UDP datagram (checksum 0: none) from mac to the
// gateway.
func udpFrameFrom(mac net.HardwareAddr, src, dst netip.AddrPort, payload []byte) []byte {
	u := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	return ethFrame(gwMAC, mac, 0x0800, ipv4Packet(src.Addr(), dst.Addr(), 17, u))
}

// tcpSYNFrame is a TCP SYN with a valid checksum from mac to the gateway.
func tcpSYNFrame(mac net.HardwareAddr, src, dst netip.AddrPort) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], src.Port())
	binary.BigEndian.PutUint16(h[2:], dst.Port())
	binary.BigEndian.PutUint32(h[4:], 1000)
	h[12] = 5 << 4
	h[13] = 0x02
	binary.BigEndian.PutUint16(h[14:], 65535)
	s, d := src.Addr().As4(), dst.Addr().As4()
	pseudo := append(append(append([]byte{}, s[:]...), d[:]...), 0, 6, 0, byte(len(h)))
	binary.BigEndian.PutUint16(h[16:], checksum(append(pseudo, h...)))
	return ethFrame(gwMAC, mac, 0x0800, ipv4Packet(src.Addr(), dst.Addr(), 6, h))
}

// Two containers that dial black holes hold handshakes in progress for
// up to dialTimeout each. Before handshakes were bounded by MaxFlows,
// a fixed 512 of them per network let two such containers (256 each)
// make the gateway drop every other container's SYN until their dials
// timed out.
func TestEgressHandshakesLeaveOthersRoom(t *testing.T) {
	leakCheck(t)
	o := newOutside(t)
	var hung atomic.Int64
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		if strings.HasSuffix(address, ":81") {
			hung.Add(1)
			<-ctx.Done() // a black hole, until the gateway closes
			return nil, ctx.Err()
		}
		return o.dial(ctx, network, address)
	}
	g := newTestGateway(t, func(c *GatewayConfig) { c.Egress, c.Dial, c.MaxFlowsPerSource = true, dial, 256 })
	var frames [][]byte
	hole := netip.AddrPortFrom(outsideIP, 81)
	for c := range 3 {
		ip := netip.AddrFrom4([4]byte{10, 77, 0, byte(3 + c)})
		mac := net.HardwareAddr{0x02, 0x76, 0x0a, 0x4d, 0x00, byte(3 + c)}
		frames = append(frames, arpRequest(mac, ip, gwPrefix.Addr()))
		if c == 2 {
			break
		}
		for i := range 256 {
			frames = append(frames, tcpSYNFrame(mac, netip.AddrPortFrom(ip, uint16(40000+i)), hole))
		}
	}
	for len(frames) > 0 {
		n := min(len(frames), g.BatchSize())
		g.Write(frames[:n])
		frames = frames[n:]
	}
	waitFor(t, "512 dials into the black hole", 10*time.Second, func() bool {
		readNow(t, g)
		return hung.Load() == 512
	})

	// The third container still gets its connection answered.
	third := netip.AddrFrom4([4]byte{10, 77, 0, 5})
	thirdMAC := net.HardwareAddr{0x02, 0x76, 0x0a, 0x4d, 0x00, 0x05}
	g.Write([][]byte{tcpSYNFrame(thirdMAC, netip.AddrPortFrom(third, 40000), netip.AddrPortFrom(outsideIP, 80))})
	var rep []byte
	waitFor(t, "an answer to the third container", 5*time.Second, func() bool {
		for _, f := range readNow(t, g) {
			if bytes.Equal(f[0:6], thirdMAC) && f[14+9] == 6 {
				rep = f
				return true
			}
		}
		return false
	})
	if flags := rep[14+20+13]; flags != 0x12 {
		t.Fatalf("third container: flags %#x, want SYN-ACK", flags)
	}
}
