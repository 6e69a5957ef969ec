package tunnel

import (
	"encoding/binary"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/config"
)

// dnsQueryFrame builds a UDP DNS query from a container to its gateway.
func dnsQueryFrame(t testing.TB, src MAC, srcIP, gw netip.Addr, gwMAC MAC, name string) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	payload, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	f := make([]byte, ether.HeaderLen+ipv4HeaderLen+udpHeaderLen+len(payload))
	(&EthHeader{Dst: gwMAC, Src: src, Type: ether.TypeIPv4}).Encode(f)
	ip := f[ether.HeaderLen:]
	ip[0], ip[8], ip[9] = 0x45, 64, udpProto
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	s4, d4 := srcIP.As4(), gw.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:], ^ipv4.Checksum(ip[:ipv4HeaderLen], 0))
	udp := ip[ipv4HeaderLen:]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], dnsPortNum)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	copy(udp[udpHeaderLen:], payload)
	return f
}

func TestDNSAnsweredInTheSwitch(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	h1 := newTestHost(t, un, testConfig(t, dir, 1, 2, "blue a 10.77.0.10", "blue b 10.77.0.11"))
	a := h1.port(t, filepath.Join(dir, "h1-a"))
	gw := netip.MustParseAddr("10.77.0.1")
	a.Inject(dnsQueryFrame(t, macOf("10.77.0.10"), netip.MustParseAddr("10.77.0.10"), gw, macOf("10.77.0.1"), "b"))
	var got []byte
	select {
	case got = <-a.Written():
	case <-time.After(5 * time.Second):
		t.Fatal("no DNS reply")
	}
	var eth EthHeader
	if eth.Decode(got) != nil || eth.Dst != macOf("10.77.0.10") || eth.Src != macOf("10.77.0.1") {
		t.Fatalf("reply ethernet header %+v", eth)
	}
	ip := got[ether.HeaderLen:]
	if ipv4.Checksum(ip[:ipv4HeaderLen], 0) != 0xffff {
		t.Fatal("bad IPv4 header checksum")
	}
	udpLen := int(binary.BigEndian.Uint16(ip[ipv4HeaderLen+4:]))
	pseudo := ipv4.Checksum(ip[12:20], uint16(udpProto+udpLen))
	if ipv4.Checksum(ip[ipv4HeaderLen:ipv4HeaderLen+udpLen], pseudo) != 0xffff {
		t.Fatal("bad UDP checksum")
	}
	var m dns.Msg
	if err := m.Unpack(ip[ipv4HeaderLen+udpHeaderLen : ipv4HeaderLen+udpLen]); err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "10.77.0.11" {
		t.Fatalf("answer %v", m.Answer)
	}
}

func TestAnswerDNSLeavesOthersAlone(t *testing.T) {
	// With an upstream, names outside the overlay must reach the
	// resolver's socket, which forwards them.
	e, _ := hotPathEngine(t, func(c *config.Config) {
		c.Host.DNSUpstream = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
	})
	nv := e.sw.snap.Load().byVNI[256]
	var s scratch
	src, srcIP := macOf("10.77.0.10"), netip.MustParseAddr("10.77.0.10")
	gw := netip.MustParseAddr("10.77.0.1")
	for _, tc := range []struct {
		name   string
		mutate func([]byte)
	}{
		{"upstream name", nil},
		{"not port 53", func(f []byte) { binary.BigEndian.PutUint16(f[ether.HeaderLen+ipv4HeaderLen+2:], 54) }},
		{"ip options", func(f []byte) { f[ether.HeaderLen] = 0x46 }},
		{"fragment", func(f []byte) { binary.BigEndian.PutUint16(f[ether.HeaderLen+6:], 0x2000) }},
		{"to another address of the subnet", func(f []byte) { f[ether.HeaderLen+19] = 9 }},
		{"lying length", func(f []byte) { binary.BigEndian.PutUint16(f[ether.HeaderLen+2:], 4000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := dnsQueryFrame(t, src, srcIP, gw, macOf("10.77.0.1"), "example.org")
			if tc.mutate != nil {
				f = dnsQueryFrame(t, src, srcIP, gw, macOf("10.77.0.1"), "b")
				tc.mutate(f)
			}
			buf := make([]byte, smallFrameBuf)
			copy(buf[8:], f)
			if r := answerDNS(&s, nv, buf, len(f)); r != nil {
				t.Fatalf("answered in the switch: %x", r)
			}
		})
	}
}

// TestAnswerDNSForAnotherServer: a query for an overlay name sent through
// the gateway to a DNS server outside the subnet (as Docker's resolver
// forwards) is answered in the switch from that server's address; a query
// for any other name is left for that server.
func TestAnswerDNSForAnotherServer(t *testing.T) {
	e, _ := hotPathEngine(t, func(c *config.Config) {
		c.Host.DNSUpstream = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
	})
	nv := e.sw.snap.Load().byVNI[256]
	var s scratch
	src, srcIP := macOf("10.77.0.10"), netip.MustParseAddr("10.77.0.10")
	server := netip.MustParseAddr("198.51.100.53")
	for _, tc := range []struct {
		name string
		want string // "": not answered here
	}{{"b", "10.77.0.11"}, {"example.org", ""}, {"nosuch", ""}} {
		f := dnsQueryFrame(t, src, srcIP, server, macOf("10.77.0.1"), tc.name)
		buf := make([]byte, smallFrameBuf)
		copy(buf[8:], f)
		r := answerDNS(&s, nv, buf, len(f))
		if tc.want == "" {
			if r != nil {
				t.Errorf("%s: answered in the switch in the name of %s", tc.name, server)
			}
			continue
		}
		if r == nil {
			t.Fatalf("%s: not answered", tc.name)
		}
		ip := r[ether.HeaderLen:]
		if from := netip.AddrFrom4([4]byte(ip[12:16])); from != server {
			t.Fatalf("%s: reply from %s, want %s (the server asked)", tc.name, from, server)
		}
		var m dns.Msg
		if err := m.Unpack(ip[ipv4HeaderLen+udpHeaderLen:]); err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != tc.want {
			t.Fatalf("%s: answer %v, want %s", tc.name, m.Answer, tc.want)
		}
	}
}

// TestAnswerDNSForAnotherServerKeepsIsolation: a container cannot use a
// query to an outside server to make the switch answer for another
// network's names, which its own gateway refuses it: such a query is left
// for the server it was sent to.
func TestAnswerDNSForAnotherServerKeepsIsolation(t *testing.T) {
	e, _ := hotPathEngine(t, func(c *config.Config) {
		c.Host.DNSUpstream = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
		c.Endpoints = append(c.Endpoints, config.Endpoint{Network: "red", Name: "c", NetNS: "/nonexistent/h1-c", Address: netip.MustParseAddr("10.78.0.10")})
	})
	snap := e.sw.snap.Load()
	blue, red := snap.byVNI[256], snap.byVNI[257]
	server := netip.MustParseAddr("198.51.100.53")
	ask := func(nv *netView, src string, dst netip.Addr, name string) *dns.Msg {
		t.Helper()
		srcIP := netip.MustParseAddr(src)
		f := dnsQueryFrame(t, macOf(src), srcIP, dst, nv.net.gw.mac, name)
		buf := make([]byte, smallFrameBuf)
		copy(buf[8:], f)
		var s scratch
		r := answerDNS(&s, nv, buf, len(f))
		if r == nil {
			return nil
		}
		var m dns.Msg
		if err := m.Unpack(r[ether.HeaderLen+ipv4HeaderLen+udpHeaderLen:]); err != nil {
			t.Fatal(err)
		}
		return &m
	}
	// The name exists: red's own container finds it through any server.
	if m := ask(red, "10.78.0.10", server, "c"); m == nil || len(m.Answer) != 1 {
		t.Fatalf("red's own name through an outside server: %v", m)
	}
	for _, name := range []string{"c", "c.red"} {
		if m := ask(blue, "10.77.0.10", server, name); m != nil {
			t.Errorf("%s: blue's container got an answer in the name of %s: %v", name, server, m.Answer)
		}
		if m := ask(blue, "10.77.0.10", blue.net.cfg.Gateway, name); m != nil && len(m.Answer) != 0 {
			t.Errorf("%s: blue's gateway answered red's name: %v", name, m.Answer)
		}
	}
}
