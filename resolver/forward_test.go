package resolver

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeUpstream is a miekg/dns server on loopback UDP and TCP that records
// the names it is asked and answers with handle.
type fakeUpstream struct {
	addr netip.AddrPort
	mu   sync.Mutex
	seen []string // "udp example.com." per query
}

func (u *fakeUpstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// startUpstream serves handle on loopback until the test ends.
func startUpstream(tb testing.TB, handle func(network string, r *dns.Msg) *dns.Msg) *fakeUpstream {
	tb.Helper()
	pc, ln := listenLoopback(tb)
	u := &fakeUpstream{addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	h := func(network string) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) {
			u.mu.Lock()
			u.seen = append(u.seen, network+" "+r.Question[0].Name)
			u.mu.Unlock()
			if m := handle(network, r); m != nil {
				w.WriteMsg(m)
			}
		}
	}
	var wg sync.WaitGroup
	tb.Cleanup(wg.Wait) // runs after the Shutdowns registered below
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: h("udp")},
		{Listener: ln, Handler: h("tcp")},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.ActivateAndServe()
		}()
		<-started
		tb.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

// answerN answers A queries with n addresses 192.0.2.x.
func answerN(r *dns.Msg, n int) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	for i := range n {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A:   net.IPv4(192, 0, 2, byte(i+1)),
		})
	}
	return m
}

// silentUpstream is a UDP socket that reads queries and never answers.
func silentUpstream(tb testing.TB) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() { pc.Close(); <-done })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func rcodeAnswer(rcode int) func(string, *dns.Msg) *dns.Msg {
	return func(_ string, r *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		return m
	}
}

func TestForward(t *testing.T) {
	good := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg { return answerN(r, 1) })
	// big sets TC over UDP and answers 60 records over TCP.
	big := startUpstream(t, func(network string, r *dns.Msg) *dns.Msg {
		if network == "udp" {
			m := answerN(r, 0)
			m.Truncated = true
			return m
		}
		return answerN(r, 60)
	})
	servfail := startUpstream(t, rcodeAnswer(dns.RcodeServerFailure))
	refused := startUpstream(t, rcodeAnswer(dns.RcodeRefused))
	nx := startUpstream(t, rcodeAnswer(dns.RcodeNameError))
	silent := silentUpstream(t)
	closedPort := func() netip.AddrPort {
		pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
		defer pc.Close()
		return netip.MustParseAddrPort(pc.LocalAddr().String())
	}()

	tests := []struct {
		name      string
		upstreams []netip.AddrPort
		forward   bool
		network   string
		rcode     int
		answers   int
		tc        bool
		maxTime   time.Duration
	}{
		{"answer", []netip.AddrPort{good.addr}, true, "udp", dns.RcodeSuccess, 1, false, time.Second},
		{"nxdomain passed through", []netip.AddrPort{nx.addr}, true, "udp", dns.RcodeNameError, 0, false, time.Second},
		{"forward off", []netip.AddrPort{good.addr}, false, "udp", dns.RcodeRefused, 0, false, time.Second},
		{"no upstreams", nil, true, "udp", dns.RcodeRefused, 0, false, time.Second},
		{"servfail then good", []netip.AddrPort{servfail.addr, good.addr}, true, "udp", dns.RcodeSuccess, 1, false, time.Second},
		{"refused then good", []netip.AddrPort{refused.addr, good.addr}, true, "udp", dns.RcodeSuccess, 1, false, time.Second},
		{"all fail", []netip.AddrPort{servfail.addr, refused.addr}, true, "udp", dns.RcodeServerFailure, 0, false, time.Second},
		{"closed port then good", []netip.AddrPort{closedPort, good.addr}, true, "udp", dns.RcodeSuccess, 1, false, time.Second},
		{"silent then good", []netip.AddrPort{silent, good.addr}, true, "udp", dns.RcodeSuccess, 1, false, time.Second},
		{"silent only", []netip.AddrPort{silent}, true, "udp", dns.RcodeServerFailure, 0, false, time.Second},
		{"silent twice bounded", []netip.AddrPort{silent, silent}, true, "tcp", dns.RcodeServerFailure, 0, false, 1500 * time.Millisecond},
		// The upstream's UDP answer has TC: the server retries over TCP and
		// gets 60 records; a 512-byte UDP client then gets TC itself.
		{"tc retried over tcp, client udp", []netip.AddrPort{big.addr}, true, "udp", dns.RcodeSuccess, 0, true, time.Second},
		{"tc retried over tcp, client tcp", []netip.AddrPort{big.addr}, true, "tcp", dns.RcodeSuccess, 60, false, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Forward, cfg.Upstreams, cfg.Timeout = tt.forward, tt.upstreams, 250*time.Millisecond
			ts := startServer(t, testNames(), cfg)
			for via, send := range map[string]func(m *dns.Msg) *dns.Msg{
				"net": func(m *dns.Msg) *dns.Msg {
					r, _, err := (&dns.Client{Net: tt.network, Timeout: 5 * time.Second}).Exchange(m, ts.addr)
					if err != nil {
						t.Fatalf("exchange: %v", err)
					}
					return r
				},
				"handler": func(m *dns.Msg) *dns.Msg {
					rec := newRecorder(tt.network)
					ts.Handler().ServeDNS(rec, m)
					if rec.msg == nil {
						t.Fatalf("no valid answer: %v", rec.err)
					}
					return rec.msg
				},
			} {
				m := newQuery("Example.COM.", dns.TypeA)
				m.Id = 4242
				start := time.Now()
				r := send(m)
				if d := time.Since(start); d > tt.maxTime {
					t.Errorf("%s: took %v, bound %v", via, d, tt.maxTime)
				}
				if r.Id != 4242 || r.Rcode != tt.rcode || len(r.Answer) != tt.answers || r.Truncated != tt.tc {
					t.Errorf("%s: id %d rcode %s answers %d tc %v", via, r.Id, dns.RcodeToString[r.Rcode], len(r.Answer), r.Truncated)
				}
				if len(r.Question) != 1 || r.Question[0].Name != "Example.COM." {
					t.Errorf("%s: question %v", via, r.Question)
				}
			}
		})
	}
	if got := big.queries(); len(got) < 2 || got[0] != "udp Example.COM." || got[1] != "tcp Example.COM." {
		t.Errorf("tc upstream saw %v, want udp then tcp", got)
	}
}

// TestForwardNeverOwnDomain checks that local names, reverse names of the
// subnet and isolated domains never reach the upstream.
func TestForwardNeverOwnDomain(t *testing.T) {
	up := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg { return answerN(r, 1) })
	cfg := testConfig()
	cfg.Forward, cfg.Upstreams, cfg.Isolated = true, []netip.AddrPort{up.addr}, []string{"net2"}
	ts := startServer(t, testNames(), cfg)
	for _, q := range []string{"nope.", "nope.net1.", "x.y.net1.", "net1.", "secret.net2.", "net2.", "99.0.77.10.in-addr.arpa."} {
		r, _, err := new(dns.Client).Exchange(newQuery(q, dns.TypeA), ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Authoritative || !r.RecursionAvailable {
			t.Errorf("%s: aa %v ra %v", q, r.Authoritative, r.RecursionAvailable)
		}
	}
	if seen := up.queries(); len(seen) != 0 {
		t.Errorf("upstream asked %v", seen)
	}
	r, _, err := new(dns.Client).Exchange(newQuery("example.org.", dns.TypeA), ts.addr)
	if err != nil || len(r.Answer) != 1 || !r.RecursionAvailable {
		t.Fatalf("forwarded: %v %v", r, err)
	}
	if st := ts.Stats(); st.Forwarded != 1 || st.NXDomain != 6 || st.NoData != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestForwardDial checks that upstream conns come from Config.Dial.
func TestForwardDial(t *testing.T) {
	up := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg { return answerN(r, 1) })
	var mu sync.Mutex
	var dialed []string
	cfg := testConfig()
	cfg.Forward = true
	cfg.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")} // rewritten by Dial
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, network+" "+addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, up.addr.String())
	}
	srv := New(nil, nil, testNames(), cfg, nil)
	rec := newRecorder("udp")
	srv.Handler().ServeDNS(rec, newQuery("example.net.", dns.TypeA))
	if rec.msg == nil || len(rec.msg.Answer) != 1 {
		t.Fatalf("answer %v", rec.msg)
	}
	if len(dialed) != 1 || dialed[0] != "udp 192.0.2.53:53" {
		t.Errorf("dialed %v", dialed)
	}
}

// TestForwardConcurrent forwards many queries at once over UDP.
func TestForwardConcurrent(t *testing.T) {
	up := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg { return answerN(r, 2) })
	cfg := testConfig()
	cfg.Forward, cfg.Upstreams = true, []netip.AddrPort{up.addr}
	ts := startServer(t, testNames(), cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _, err := new(dns.Client).Exchange(newQuery("h"+strconv.Itoa(i)+".example.", dns.TypeA), ts.addr)
			if err == nil && len(r.Answer) != 2 {
				err = net.UnknownNetworkError("short answer")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSetIsolated checks that a network added after the server started is
// isolated from then on: its names are NXDOMAIN, never forwarded.
func TestSetIsolated(t *testing.T) {
	up := startUpstream(t, func(_ string, r *dns.Msg) *dns.Msg { return answerN(r, 1) })
	cfg := testConfig()
	cfg.Forward, cfg.Upstreams = true, []netip.AddrPort{up.addr}
	ts := startServer(t, testNames(), cfg)
	ask := func() int {
		r, _, err := new(dns.Client).Exchange(newQuery("web.net3.", dns.TypeA), ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		return r.Rcode
	}
	if rc := ask(); rc != dns.RcodeSuccess || len(up.queries()) != 1 {
		t.Fatalf("before: rcode %d, upstream saw %v", rc, up.queries())
	}
	ts.SetIsolated([]string{"net3"})
	if rc := ask(); rc != dns.RcodeNameError || len(up.queries()) != 1 {
		t.Fatalf("after: rcode %d, upstream saw %v", rc, up.queries())
	}
}
