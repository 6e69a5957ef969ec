package tests

//  PFX-q1 10.77.0.10 (client)  PFX-s1 .11 svc     PFX-s2 .21 svc       PFX-s3 .31 svc
//  PFX-g1 10.79.0.10 (green)        |                  |                    |
//        \_______  |  _____________/                   |                    |
//        vxwire up (PFX-h1)                     vxwire up (PFX-h2)    vxwire up (PFX-h3)
//        dns_upstream 198.18.0.53:53
//        PFX-u1 198.18.0.1 ------------------- PFX-u2 198.18.0.2 --- PFX-u3 198.18.0.3
//                     \___________ bridge br0 in PFX-sw ___________/
//                                         |
//                               PFX-ns eth0 198.18.0.53: dnsmasq, port 53
//
//  blue: VNI 256, 10.77.0.0/24, egress (default); green: VNI 258,
//  10.79.0.0/24, egress = false. s1-s3 carry the alias svc.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// green is a network without egress: its DNS forwards nothing.
var green = netConf{name: "green", vni: 258, subnet: "10.79.0.0/24", gateway: "10.79.0.1", noEgress: true}

// Upstream resolver of TestDNSDetails and the one name only it knows.
const (
	upstreamAddr = "198.18.0.53"
	upstreamName = "only.dnsmasq.test"
	upstreamIP   = "198.51.100.7"
)

// TestDNSDetails checks the gateway's DNS beyond plain names: a service
// alias spread over three hosts answered with all addresses in rotating
// order, PTR, TCP (dig and kdig), forwarding to an upstream resolver
// (dnsmasq) with egress and REFUSED without, and malformed queries.
func TestDNSDetails(t *testing.T) {
	e := newEnv(t, "dig", "kdig", "dnsmasq", "getent")
	hosts, sw := e.threeHosts()
	up := e.newNS("ns")
	e.attachUnderlay(sw, up, "eth0", "53", upstreamAddr)
	hostsFile := e.file("dnsmasq.hosts", upstreamIP+" "+upstreamName+"\n")
	dnsmasq := e.startProc(up, "dnsmasq", "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--addn-hosts="+hostsFile, "--port=53", "--listen-address="+upstreamAddr, "--bind-interfaces",
		"--log-facility=-", "--log-queries")
	e.eventually(readyTimeout, "dnsmasq answers", func() error {
		if !dnsmasq.running() {
			b, _ := os.ReadFile(dnsmasq.log)
			return permanent(fmt.Errorf("dnsmasq exited:\n%s", b))
		}
		return e.resolvesTo(up, upstreamAddr, upstreamName, upstreamIP)
	})

	q1, g1 := e.container("q1"), e.container("g1")
	svcAddrs := []string{"10.77.0.11", "10.77.0.21", "10.77.0.31"}
	var confs []hostConf
	for i, h := range hosts {
		name := fmt.Sprintf("s%d", i+1)
		c := hostConf{peers: others(hosts, h), networks: []netConf{blue, green},
			endpoints: []epConf{{network: "blue", name: name, ns: e.container(name), addr: svcAddrs[i], aliases: []string{"svc"}}}}
		if i == 0 {
			c.dnsUpstream = []string{upstreamAddr + ":53"}
			c.endpoints = append(c.endpoints,
				epConf{network: "blue", name: "q1", ns: q1, addr: "10.77.0.10"},
				epConf{network: "green", name: "g1", ns: g1, addr: "10.79.0.10"})
		}
		confs = append(confs, c)
	}
	e.startInTurn(hosts, confs)
	gw := blue.gateway

	// Service: all three addresses, the first one rotating.
	e.eventually(dnsTimeout, "svc resolves to all three", func() error { return e.resolvesTo(q1, gw, "svc", svcAddrs...) })
	firsts := map[string]int{}
	for range 6 {
		got, err := e.digShort(q1, gw, "svc")
		if err != nil {
			t.Fatal(err)
		}
		if !sameSet(got, svcAddrs) {
			t.Fatalf("dig svc: got %q, want %q in some order", got, svcAddrs)
		}
		firsts[got[0]]++
	}
	if len(firsts) < 2 {
		t.Errorf("6 answers for svc all started with the same address: %v", firsts)
	}
	t.Logf("first address of 6 answers for svc: %v", firsts)
	if err := e.resolvesTo(q1, gw, "svc.blue", svcAddrs...); err != nil {
		t.Error(err)
	}
	if err := e.resolvesTo(q1, gw, "S2.Blue", "10.77.0.21"); err != nil {
		t.Errorf("names are case-insensitive: %v", err)
	}

	// PTR for a local and two remote endpoints; none for a free address.
	for i, a := range svcAddrs {
		if err := lines(e.digShort(q1, gw, a, "-x")).want(fmt.Sprintf("s%d.blue.", i+1)); err != nil {
			t.Errorf("PTR of %s: %v", a, err)
		}
	}
	if err := e.hasStatus(q1, gw, "10.77.0.99", "NXDOMAIN", "-x"); err != nil {
		t.Errorf("PTR of a free address: %v", err)
	}

	// TCP, with dig and with kdig.
	if err := lines(e.digShort(q1, gw, "s3", "+tcp")).want("10.77.0.31"); err != nil {
		t.Errorf("dig +tcp: %v", err)
	}
	if got, err := e.digShort(q1, gw, "svc", "+tcp"); err != nil || !sameSet(got, svcAddrs) {
		t.Errorf("dig +tcp svc: got %q, %v; want %q", got, err, svcAddrs)
	}
	out, err := e.in(q1, "kdig", "@"+gw, "+tcp", "+short", "+retry=0", "+time=2", "s2")
	if err != nil || strings.TrimSpace(out) != "10.77.0.21" {
		t.Errorf("kdig +tcp s2: got %q, %v; want 10.77.0.21", out, err)
	}

	// Forwarding: a name only dnsmasq knows, over UDP and TCP, and through
	// the resolv.conf the daemon wrote.
	e.eventually(dnsTimeout, "forwarded name resolves", func() error { return e.resolvesTo(q1, gw, upstreamName, upstreamIP) })
	if err := lines(e.digShort(q1, gw, upstreamName, "+tcp")).want(upstreamIP); err != nil {
		t.Errorf("forwarded over TCP: %v", err)
	}
	if out, err := e.in(q1, "getent", "hosts", upstreamName); err != nil || !strings.HasPrefix(out, upstreamIP+" ") {
		t.Errorf("getent hosts %s in q1 (resolv.conf): got %q, %v; want %s", upstreamName, out, err, upstreamIP)
	}
	if b, _ := os.ReadFile(dnsmasq.log); !strings.Contains(string(b), "query[A] "+upstreamName+" from 198.18.0.1") {
		t.Errorf("dnsmasq did not log a query for %s from host h1:\n%s", upstreamName, tail(string(b), 20))
	}
	// Without egress: REFUSED, though the host has an upstream; own names work.
	if err := e.hasStatus(g1, green.gateway, upstreamName, "REFUSED"); err != nil {
		t.Error(err)
	}
	if err := e.resolvesTo(g1, green.gateway, "g1", "10.79.0.10"); err != nil {
		t.Error(err)
	}
	if err := e.hasStatus(g1, green.gateway, "svc", "NXDOMAIN"); err != nil {
		t.Error(err)
	}

	// Bad queries: each answered FORMERR or dropped; the server lives on.
	var outcomes []string
	for _, c := range badQueries() {
		got, err := e.checkBadQuery(q1, gw, c.msg)
		if err != nil {
			t.Errorf("%s (%d bytes): %v", c.name, len(c.msg), err)
		}
		outcomes = append(outcomes, c.name+": "+got)
	}
	t.Logf("bad queries: %s", strings.Join(outcomes, "; "))
	long := strings.Join([]string{strings.Repeat("a", 60), strings.Repeat("b", 60), strings.Repeat("c", 60), strings.Repeat("d", 60), "blue"}, ".")
	if err := e.hasStatus(q1, gw, long, "NXDOMAIN"); err != nil {
		t.Errorf("a valid %d-byte name under blue: %v", len(long), err)
	}
	if err := e.resolvesTo(q1, gw, "s1", "10.77.0.11"); err != nil {
		t.Errorf("after the bad queries: %v", err)
	}
	if err := lines(e.digShort(q1, gw, "s2", "+tcp")).want("10.77.0.21"); err != nil {
		t.Errorf("after the bad queries, over TCP: %v", err)
	}
}

// lineSet is digShort's result, checked with want.
type lineSet struct {
	got []string
	err error
}

func lines(got []string, err error) lineSet { return lineSet{got, err} }

// want returns nil when the lines are exactly want.
func (l lineSet) want(want ...string) error {
	if l.err != nil {
		return l.err
	}
	if !slices.Equal(l.got, want) {
		return fmt.Errorf("got %q, want %q", l.got, want)
	}
	return nil
}

// badQuery is one malformed DNS message.
type badQuery struct {
	name string
	msg  []byte
}

// dnsHeader returns a query header with the given ID and question count.
func dnsHeader(id, qdcount uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b, id)
	b[2] = 0x01 // RD
	binary.BigEndian.PutUint16(b[4:], qdcount)
	return b
}

// badQueries returns the malformed messages TestDNSDetails sends.
func badQueries() []badQuery {
	tail := []byte{0, 1, 0, 1} // type A, class IN
	label250 := append(append(append(dnsHeader(0xb001, 1), 250), []byte(strings.Repeat("a", 250))...), 0)
	var long []byte // 5 labels of 60 bytes: 306 bytes on the wire, over 255
	for range 5 {
		long = append(append(long, 60), []byte(strings.Repeat("x", 60))...)
	}
	garbage := make([]byte, 200)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	binary.BigEndian.PutUint16(garbage, 0xb006)
	garbage[2] &= 0x07 // a query (QR clear) with opcode QUERY, so it is parsed
	return []badQuery{
		{"3 bytes", []byte{0xb0, 0x00, 0x01}},
		{"header announcing a question that is missing", dnsHeader(0xb002, 1)},
		{"a single 250-byte label", append(label250, tail...)},
		{"a 306-byte name", append(append(append(dnsHeader(0xb003, 1), long...), 0), tail...)},
		{"a compression pointer as question name", append(append(dnsHeader(0xb004, 1), 0xc0, 0x0c), tail...)},
		{"a name cut short", append(dnsHeader(0xb005, 1), 10, 'a', 'b')},
		{"200 bytes of garbage", garbage},
	}
}

// checkBadQuery sends msg from a UDP socket inside namespace n to
// server:53 and requires that no answer comes back, or only FORMERR with
// msg's ID. It returns "dropped" or "FORMERR".
func (e *env) checkBadQuery(n *netns, server string, msg []byte) (string, error) {
	var pc *net.UDPConn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("udp socket in %s: %w", n.name, err)
	}
	defer pc.Close()
	dst := netip.AddrPortFrom(netip.MustParseAddr(server), 53)
	if _, err := pc.WriteToUDPAddrPort(msg, dst); err != nil {
		return "", err
	}
	_ = pc.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4096)
	k, err := pc.Read(buf)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "dropped", nil
	case err != nil:
		return "", err
	case k < 12:
		return "", fmt.Errorf("answer of %d bytes, shorter than a DNS header", k)
	}
	id, flags := binary.BigEndian.Uint16(buf), binary.BigEndian.Uint16(buf[2:])
	if len(msg) >= 2 && id != binary.BigEndian.Uint16(msg) {
		return "", fmt.Errorf("answer with ID %#04x to a query with ID %#04x", id, binary.BigEndian.Uint16(msg))
	}
	if flags&0x8000 == 0 || flags&0xF != 1 {
		return "", fmt.Errorf("answer with flags %#04x (QR %v, RCODE %d), want a response with RCODE 1 (FORMERR) or none",
			flags, flags&0x8000 != 0, flags&0xF)
	}
	return "FORMERR", nil
}
