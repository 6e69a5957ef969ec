package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func TestLocalAnswers(t *testing.T) {
	type want struct {
		rcode int
		addrs []string // sorted A answers
		ptrs  []string
		aa    bool
	}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		want  want
	}{
		{"bare name", "web.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.2"}, aa: true}},
		{"qualified", "web.net1.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.2"}, aa: true}},
		{"mixed case", "WeB.NeT1.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.2"}, aa: true}},
		{"alias", "database.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.3"}, aa: true}},
		{"dotted alias", "svc.internal.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.20"}, aa: true}},
		{"dotted alias qualified", "svc.internal.net1.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.20"}, aa: true}},
		{"service", "api.", dns.TypeA, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.10", "10.77.0.11", "10.77.0.12"}, aa: true}},
		{"ANY", "web.", dns.TypeANY, want{rcode: dns.RcodeSuccess, addrs: []string{"10.77.0.2"}, aa: true}},
		{"AAAA nodata", "web.", dns.TypeAAAA, want{rcode: dns.RcodeSuccess, aa: true}},
		{"MX nodata", "web.net1.", dns.TypeMX, want{rcode: dns.RcodeSuccess, aa: true}},
		{"TXT nodata", "api.", dns.TypeTXT, want{rcode: dns.RcodeSuccess, aa: true}},
		{"unknown bare", "nope.", dns.TypeA, want{rcode: dns.RcodeNameError, aa: true}},
		{"unknown qualified", "nope.net1.", dns.TypeA, want{rcode: dns.RcodeNameError, aa: true}},
		{"deep under domain", "a.b.net1.", dns.TypeA, want{rcode: dns.RcodeNameError, aa: true}},
		{"apex", "net1.", dns.TypeA, want{rcode: dns.RcodeSuccess, aa: true}},
		{"other network bare", "secret.", dns.TypeA, want{rcode: dns.RcodeNameError, aa: true}},
		{"other network qualified here", "secret.net1.", dns.TypeA, want{rcode: dns.RcodeNameError, aa: true}},
		{"other network isolated", "secret.net2.", dns.TypeA, want{rcode: dns.RcodeNameError, aa: true}},
		{"foreign refused", "example.com.", dns.TypeA, want{rcode: dns.RcodeRefused}},
		{"root refused", ".", dns.TypeNS, want{rcode: dns.RcodeRefused}},
		{"ptr", "2.0.77.10.in-addr.arpa.", dns.TypePTR, want{rcode: dns.RcodeSuccess, ptrs: []string{"web.net1."}, aa: true}},
		{"ptr service member", "11.0.77.10.in-addr.arpa.", dns.TypePTR, want{rcode: dns.RcodeSuccess, ptrs: []string{"api-11.net1."}, aa: true}},
		{"ptr no endpoint", "99.0.77.10.in-addr.arpa.", dns.TypePTR, want{rcode: dns.RcodeNameError, aa: true}},
		{"ptr nodata", "2.0.77.10.in-addr.arpa.", dns.TypeA, want{rcode: dns.RcodeSuccess, aa: true}},
		{"ptr other network", "2.0.78.10.in-addr.arpa.", dns.TypePTR, want{rcode: dns.RcodeRefused}},
		{"ptr bad octet", "300.0.77.10.in-addr.arpa.", dns.TypePTR, want{rcode: dns.RcodeRefused}},
	}
	cfg := testConfig()
	cfg.Isolated = []string{"net2"}
	for via, ex := range exchangers(t, testNames(), cfg) {
		for _, tt := range tests {
			t.Run(via+"/"+tt.name, func(t *testing.T) {
				r := ex(t, newQuery(tt.qname, tt.qtype))
				if r.Rcode != tt.want.rcode {
					t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.want.rcode])
				}
				if r.Authoritative != tt.want.aa {
					t.Errorf("aa = %v, want %v", r.Authoritative, tt.want.aa)
				}
				if r.RecursionAvailable || r.Truncated || !r.Response || !r.RecursionDesired {
					t.Errorf("flags: ra=%v tc=%v qr=%v rd=%v", r.RecursionAvailable, r.Truncated, r.Response, r.RecursionDesired)
				}
				if len(r.Question) != 1 || r.Question[0].Name != tt.qname {
					t.Errorf("question = %v, want %s echoed", r.Question, tt.qname)
				}
				got := aAddrs(r)
				sort.Strings(got)
				if !slices.Equal(got, tt.want.addrs) {
					t.Errorf("A = %v, want %v", got, tt.want.addrs)
				}
				var ptrs []string
				for _, rr := range r.Answer {
					if p, ok := rr.(*dns.PTR); ok {
						ptrs = append(ptrs, p.Ptr)
					}
					if rr.Header().Ttl != DefaultTTL {
						t.Errorf("ttl = %d", rr.Header().Ttl)
					}
				}
				if !slices.Equal(ptrs, tt.want.ptrs) {
					t.Errorf("PTR = %v, want %v", ptrs, tt.want.ptrs)
				}
				if len(r.Answer) != len(tt.want.addrs)+len(tt.want.ptrs) || len(r.Ns) != 0 {
					t.Errorf("answer %d ns %d records", len(r.Answer), len(r.Ns))
				}
			})
		}
	}
}

// TestIsolation serves two networks side by side: each answers only its own.
func TestIsolation(t *testing.T) {
	names := testNames()
	c1, c2 := testConfig(), Config{Network: "net2", Subnet: netip.MustParsePrefix("10.78.0.0/24")}
	c1.Isolated, c2.Isolated = []string{"net2"}, []string{"net1"}
	s1, s2 := startServer(t, names, c1), startServer(t, names, c2)
	tests := []struct {
		srv   *testServer
		qname string
		rcode int
	}{
		{s1, "web.", dns.RcodeSuccess},
		{s1, "secret.", dns.RcodeNameError},
		{s1, "secret.net2.", dns.RcodeNameError},
		{s2, "secret.", dns.RcodeSuccess},
		{s2, "secret.net2.", dns.RcodeSuccess},
		{s2, "web.", dns.RcodeNameError},
		{s2, "web.net1.", dns.RcodeNameError},
		{s2, "db.net2.", dns.RcodeNameError},
	}
	for _, tt := range tests {
		t.Run(tt.srv.cfg.Network+"/"+tt.qname, func(t *testing.T) {
			r, _, err := new(dns.Client).Exchange(newQuery(tt.qname, dns.TypeA), tt.srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != tt.rcode {
				t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	for via, ex := range exchangers(t, testNames(), testConfig()) {
		t.Run(via, func(t *testing.T) {
			seen := map[string]bool{}
			for range 6 {
				got := aAddrs(ex(t, newQuery("api.", dns.TypeA)))
				if len(got) != 3 {
					t.Fatalf("got %v", got)
				}
				seen[strings.Join(got, ",")] = true
			}
			if len(seen) != 3 {
				t.Errorf("saw %d orders, want the 3 rotations: %v", len(seen), seen)
			}
		})
	}
}

// bigService registers n endpoints under "big" in net1 (10.77.1.x in a /16).
func bigService(n int) (*fakeNames, Config) {
	f := testNames()
	for i := range n {
		f.add("net1", "10.77.1."+strconv.Itoa(i+1), "big-"+strconv.Itoa(i), "big")
	}
	cfg := testConfig()
	cfg.Subnet = netip.MustParsePrefix("10.77.0.0/16")
	return f, cfg
}

func TestTruncation(t *testing.T) {
	names, cfg := bigService(100)
	ts := startServer(t, names, cfg)
	tests := []struct {
		name    string
		network string
		edns    uint16
		maxLen  int
		tc      bool
	}{
		{"udp plain 512", "udp", 0, 512, true},
		{"udp edns 1232", "udp", 1232, 1232, true},
		{"udp edns 4096 capped", "udp", 4096, 1232, true},
		{"udp edns 100 raised to 512", "udp", 100, 512, true},
		{"tcp full", "tcp", 0, 65535, false},
		{"tcp edns full", "tcp", 1232, 65535, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newQuery("big.", dns.TypeA)
			if tt.edns != 0 {
				m.SetEdns0(tt.edns, false)
			}
			b, _ := m.Pack()
			var raw []byte
			if tt.network == "udp" {
				raw = rawUDP(t, ts.addr, b, 3*time.Second)
			} else {
				c := &dns.Client{Net: "tcp"}
				r, _, err := c.Exchange(m, ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ = r.Pack()
			}
			r := new(dns.Msg)
			if err := r.Unpack(raw); err != nil {
				t.Fatalf("invalid answer: %v", err)
			}
			if len(raw) > tt.maxLen {
				t.Errorf("answer is %d bytes, limit %d", len(raw), tt.maxLen)
			}
			if r.Truncated != tt.tc {
				t.Errorf("tc = %v, want %v", r.Truncated, tt.tc)
			}
			if n := len(aAddrs(r)); tt.tc && (n == 0 || n >= 100) || !tt.tc && n != 100 {
				t.Errorf("%d addresses", n)
			}
			if (r.IsEdns0() != nil) != (tt.edns != 0) {
				t.Errorf("edns in answer = %v", r.IsEdns0() != nil)
			}
		})
	}
	if st := ts.Stats(); st.Truncated != 4 {
		t.Errorf("stats truncated = %d, want 4", st.Truncated)
	}
}

// TestMalformed sends bad packets over real UDP and TCP: each gets FORMERR,
// NOTIMP or no answer, and the server keeps answering.
func TestMalformed(t *testing.T) {
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	two := newQuery("web.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	resp := newQuery("web.", dns.TypeA)
	resp.Response = true
	notify := newQuery("web.", dns.TypeA)
	notify.Opcode = dns.OpcodeNotify
	update := newQuery("net1.", dns.TypeSOA)
	update.Opcode = dns.OpcodeUpdate
	chaos := newQuery("version.bind.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	ednsV1 := newQuery("web.", dns.TypeA)
	ednsV1.SetEdns0(1232, false)
	ednsV1.IsEdns0().SetVersion(1)
	long := "web." + strings.Repeat(strings.Repeat("a", 62)+".", 3) + strings.Repeat("b", 61) + "."
	longName := pack(newQuery("web.", dns.TypeA))[:12]
	for _, l := range strings.Split(strings.TrimSuffix(long, "."), ".") {
		longName = append(longName, byte(len(l)))
		longName = append(longName, l...)
	}
	longName = append(longName, 0, 0, 1, 0, 1)
	// 3×63 + 56 bytes of labels, "net1" and the root: 255 bytes on the wire.
	maxName := strings.Repeat(strings.Repeat("m", 63)+".", 3) + strings.Repeat("n", 56) + ".net1."
	twoOPT := pack(newQuery("web.", dns.TypeA))
	twoOPT[11] = 2
	for range 2 {
		twoOPT = append(twoOPT, 0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 0)
	}
	pointer := append(pack(newQuery("web.", dns.TypeA))[:12], 0xC0, 12, 0, 1, 0, 1)

	tests := []struct {
		name  string
		b     []byte
		rcode int // -1: no answer
	}{
		{"empty", nil, -1},
		{"short", []byte{1, 2, 3}, -1},
		{"text", []byte("this is not a dns message at all"), dns.RcodeNotImplemented}, // opcode 13
		{"garbage", []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0x80, 0x41}, dns.RcodeFormatError},
		{"header only", []byte{0xab, 0xcd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, dns.RcodeFormatError},
		{"two questions", pack(two), dns.RcodeFormatError},
		{"response as query", pack(resp), -1},
		{"notify", pack(notify), dns.RcodeNotImplemented},
		{"update", pack(update), dns.RcodeNotImplemented},
		{"chaos class", pack(chaos), dns.RcodeNotImplemented},
		{"edns version 1", pack(ednsV1), dns.RcodeBadVers},
		{"name over 255", longName, dns.RcodeFormatError},
		{"name of 255", pack(newQuery(maxName, dns.TypeA)), dns.RcodeNameError},
		{"two OPT", twoOPT, dns.RcodeFormatError},
		{"pointer in question", pointer, dns.RcodeFormatError},
		{"truncated question", pack(newQuery("web.", dns.TypeA))[:16], dns.RcodeFormatError},
		{"count beyond data", append(pack(newQuery("web.", dns.TypeA))[:6], 0, 5, 0, 0, 0, 0), dns.RcodeFormatError},
	}
	ts := startServer(t, testNames(), testConfig())
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				var raw []byte
				if network == "udp" {
					if len(tt.b) == 0 {
						t.Skip("an empty datagram cannot carry a query")
					}
					raw = rawUDP(t, ts.addr, tt.b, 300*time.Millisecond)
				} else {
					raw = rawTCP(t, ts.addr, tt.b)
				}
				if tt.rcode < 0 {
					if raw != nil {
						t.Fatalf("got an answer, want none")
					}
					return
				}
				r := new(dns.Msg)
				if err := r.Unpack(raw); err != nil {
					t.Fatalf("invalid answer %x: %v", raw, err)
				}
				if r.Rcode != tt.rcode || !r.Response || r.Id != binary.BigEndian.Uint16(tt.b) {
					t.Fatalf("answer rcode %s id %d qr %v", dns.RcodeToString[r.Rcode], r.Id, r.Response)
				}
			})
		}
	}
	r, _, err := new(dns.Client).Exchange(newQuery("web.", dns.TypeA), ts.addr)
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("server stopped answering: %v %v", r, err)
	}
	st := ts.Stats()
	if st.FormErr == 0 || st.NotImp == 0 || st.Dropped == 0 {
		t.Errorf("stats %+v", st)
	}
}

// rawTCP sends b in one length-prefixed frame and returns the answer, or
// nil when the server sends none (closes or stays silent for 300 ms).
func rawTCP(tb testing.TB, addr string, b []byte) []byte {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.Write(append([]byte{byte(len(b) >> 8), byte(len(b))}, b...))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var hdr [2]byte
	if _, err := readFull(c, hdr[:]); err != nil {
		return nil
	}
	out := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := readFull(c, out); err != nil {
		tb.Fatalf("short tcp answer: %v", err)
	}
	return out
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestTCPLimits(t *testing.T) {
	cfg := testConfig()
	cfg.MaxTCPConns = 2
	cfg.TCPIdle = 200 * time.Millisecond
	ts := startServer(t, testNames(), cfg)

	t.Run("pipelined queries on one connection", func(t *testing.T) {
		c, err := dns.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			m := newQuery("web.", dns.TypeA)
			m.Id = uint16(100 + i)
			if err := c.WriteMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			r, err := c.ReadMsg()
			if err != nil || r.Id != uint16(100+i) || len(r.Answer) != 1 {
				t.Fatalf("answer %d: %v %v", i, r, err)
			}
		}
	})
	t.Run("idle connection closed", func(t *testing.T) {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read data from an idle connection")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("idle connection kept for %v", d)
		}
	})
	t.Run("connection cap", func(t *testing.T) {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for range 2 {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		if !eventually(t, 2*time.Second, func() bool {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				return false
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, err = c.Read(make([]byte, 1))
			return err != nil && ts.Stats().TCPRejected > 0
		}) {
			t.Fatalf("third connection was not rejected: %+v", ts.Stats())
		}
	})
}

// TestLifecycle checks that Serve returns after Close with busy clients
// and that no goroutine is left behind.
func TestLifecycle(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs after the other cleanups
	cfg := testConfig()
	cfg.Forward = true
	cfg.Upstreams = []netip.AddrPort{silentUpstream(t)}
	cfg.Timeout = 10 * time.Second // Close, not the timeout, must end the forward
	pc, ln := listenLoopback(t)
	s := New(pc, ln, testNames(), cfg, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	if !eventually(t, 2*time.Second, s.serving.Load) {
		t.Fatal("serve did not start")
	}
	if err := s.Serve(); err != ErrServing {
		t.Fatalf("second serve = %v, want ErrServing", err)
	}
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	rawUDP(t, pc.LocalAddr().String(), mustPack(t, newQuery("example.com.", dns.TypeA)), 50*time.Millisecond)
	if !eventually(t, 2*time.Second, func() bool { return len(s.fwdSem) == 1 }) {
		t.Fatal("forward did not start")
	}
	start := time.Now()
	s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func mustPack(tb testing.TB, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestStatsCounts(t *testing.T) {
	srv := New(nil, nil, testNames(), testConfig(), nil)
	for _, q := range []*dns.Msg{newQuery("web.", dns.TypeA), newQuery("nope.", dns.TypeA), newQuery("web.", dns.TypeAAAA), newQuery("example.com.", dns.TypeA)} {
		srv.Handler().ServeDNS(newRecorder("tcp"), q)
	}
	got := srv.Stats()
	want := Stats{NoError: 1, NXDomain: 1, NoData: 1, Refused: 1, TCP: 4}
	if got != want {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

// plainConn hides *net.UDPConn's AddrPort methods, so the server takes
// the generic ReadFrom/WriteTo path that netstack conns use.
type plainConn struct{ net.PacketConn }

func TestGenericPacketConn(t *testing.T) {
	pc, ln := listenLoopback(t)
	ln.Close()
	s := New(plainConn{pc}, nil, testNames(), testConfig(), nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() { s.Close(); <-done }()
	r, _, err := new(dns.Client).Exchange(newQuery("api.", dns.TypeA), pc.LocalAddr().String())
	if err != nil || len(r.Answer) != 3 {
		t.Fatalf("answer %v: %v", r, err)
	}
}
