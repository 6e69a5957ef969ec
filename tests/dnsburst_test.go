package tests

//  PFX-c1 10.77.0.10                          PFX-c2 10.77.0.20
//   4 sockets, bursts of queries to .1:53           |
//        vxwire up (PFX-h1), gw 10.77.0.1      vxwire up (PFX-h2)
//        PFX-u1 198.18.0.1 ------- br0 ------- PFX-u2 198.18.0.2

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSBurst sends bursts of queries from four sockets of one container
// at once, as dnsperf or a busy resolver client does, and checks that
// every query gets its own right answer. The switch answers them and
// writes each socket's replies in a burst to the container's TAP as one
// UDP GSO write, which the container's kernel cuts back into datagrams:
// a reply lost, changed, swapped with another socket's or out of place
// fails here, and the TAP's counters must show that grouped writes were
// made.
func TestDNSBurst(t *testing.T) {
	e := newEnv(t)
	p := e.bluePair()
	h1, c1 := p.h1, p.c1
	e.eventually(dnsTimeout, "c2 resolves in c1", func() error { return e.resolvesTo(c1, blue.gateway, "c2", "10.77.0.20") })

	// One name per socket: each socket's replies are of one size, so a
	// burst of them can go out as one group. "absent" gets NXDOMAIN.
	names := []string{"c1", "c2", "c2.blue", "absent"}
	want := map[string]string{"c1": "10.77.0.10", "c2": "10.77.0.20", "c2.blue": "10.77.0.20"}
	var conns []*net.UDPConn
	for range names {
		conns = append(conns, e.listenUDP(c1, "10.77.0.10", 0).pc)
	}
	server := netip.AddrPortFrom(netip.MustParseAddr(blue.gateway), 53)

	before := e.mustStatus(h1).Endpoints[0].TAP
	const rounds, perSocket = 8, 32
	buf := make([]byte, 1500)
	for r := range rounds {
		for k, c := range conns {
			for q := range perSocket {
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(names[k]), dns.TypeA)
				m.Id = uint16(r<<8 | k<<6 | q)
				wire, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.WriteToUDPAddrPort(wire, server); err != nil {
					t.Fatal(err)
				}
			}
		}
		for k, c := range conns {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for q := range perSocket {
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("round %d: socket %d (%s): reply %d of %d: %v", r, k, names[k], q+1, perSocket, err)
				}
				if err := checkReply(buf[:n], uint16(r<<8|k<<6|q), names[k], want[names[k]]); err != nil {
					t.Fatalf("round %d: socket %d: reply %d: %v", r, k, q+1, err)
				}
			}
		}
	}
	after := e.mustStatus(h1).Endpoints[0].TAP
	if before == nil || after == nil {
		t.Fatal("vxwire status --json has no TAP counters for c1")
	}
	t.Logf("c1's TAP: %d frames in %d writes, %d of them in GSO writes",
		after.TxFrames-before.TxFrames, after.TxWrites-before.TxWrites, after.TxCoalesced-before.TxCoalesced)
	if after.TxCoalesced == before.TxCoalesced {
		t.Errorf("%d replies in bursts of %d per socket, none written as part of a group", rounds*len(names)*perSocket, perSocket)
	}
}

// checkReply checks that wire is the reply to query id for name: its
// address, or NXDOMAIN when addr is empty.
func checkReply(wire []byte, id uint16, name, addr string) error {
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return err
	}
	if m.Id != id || len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, dns.Fqdn(name)) {
		return fmt.Errorf("reply %d for %v, want %d for %s (out of order or another socket's)", m.Id, m.Question, id, name)
	}
	if addr == "" {
		if m.Rcode != dns.RcodeNameError {
			return fmt.Errorf("%s: rcode %s, want NXDOMAIN", name, dns.RcodeToString[m.Rcode])
		}
		return nil
	}
	if len(m.Answer) != 1 {
		return fmt.Errorf("%s: %d answers, want 1", name, len(m.Answer))
	}
	a, ok := m.Answer[0].(*dns.A)
	if !ok || a.A.String() != addr {
		return fmt.Errorf("%s: answer %v, want %s", name, m.Answer[0], addr)
	}
	return nil
}
