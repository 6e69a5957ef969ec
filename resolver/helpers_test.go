package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var _ Names = (*fakeNames)(nil)

// fakeNames is an in-memory Names: network → name → addresses.
type fakeNames struct {
	mu  sync.RWMutex
	fwd map[string]map[string][]netip.Addr
	rev map[string]map[netip.Addr][]string
}

func newFakeNames() *fakeNames {
	return &fakeNames{fwd: map[string]map[string][]netip.Addr{}, rev: map[string]map[netip.Addr][]string{}}
}

// add registers container name (and aliases) at addr in network.
func (f *fakeNames) add(network, addr string, name string, aliases ...string) *fakeNames {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := netip.MustParseAddr(addr)
	if f.fwd[network] == nil {
		f.fwd[network] = map[string][]netip.Addr{}
		f.rev[network] = map[netip.Addr][]string{}
	}
	for _, n := range append([]string{name}, aliases...) {
		f.fwd[network][n] = append(f.fwd[network][n], a)
	}
	f.rev[network][a] = append(f.rev[network][a], name)
	return f
}

func (f *fakeNames) Lookup(network, name string) []netip.Addr {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.fwd[network][name]
}

func (f *fakeNames) Reverse(network string, addr netip.Addr) []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.rev[network][addr]
}

var _ dns.ResponseWriter = (*recorder)(nil)

// recorder is a dns.ResponseWriter that keeps what the handler wrote.
type recorder struct {
	remote net.Addr
	raw    []byte
	msg    *dns.Msg
	err    error // unpacking raw
	writes int
}

// newRecorder records for a client on transport "udp" or "tcp".
func newRecorder(network string) *recorder {
	if network == "tcp" {
		return &recorder{remote: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 40000}}
	}
	return &recorder{remote: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 40000}}
}

func (r *recorder) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = r.Write(b)
	return err
}
func (r *recorder) Write(b []byte) (int, error) {
	r.writes++
	r.raw = append([]byte(nil), b...)
	r.msg = new(dns.Msg)
	if r.err = r.msg.Unpack(b); r.err != nil {
		r.msg = nil
	}
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

// testNames is the fixture most tests use: network "net1" (10.77.0.0/24)
// with web, db (alias "database"), a three-replica service "api", and
// network "net2" with "secret".
func testNames() *fakeNames {
	f := newFakeNames()
	f.add("net1", "10.77.0.2", "web")
	f.add("net1", "10.77.0.3", "db", "database")
	for i := 10; i < 13; i++ {
		f.add("net1", "10.77.0."+strconv.Itoa(i), "api-"+strconv.Itoa(i), "api")
	}
	f.add("net1", "10.77.0.20", "svc.internal") // a dotted alias
	f.add("net2", "10.78.0.2", "secret")
	return f
}

func testConfig() Config {
	return Config{Network: "net1", Subnet: netip.MustParsePrefix("10.77.0.0/24")}
}

// listenLoopback opens UDP and TCP on the same 127.0.0.1 port.
func listenLoopback(tb testing.TB) (net.PacketConn, net.Listener) {
	tb.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	tb.Fatal("no free port for udp and tcp")
	return nil, nil
}

// testServer is a Server serving on loopback, closed at cleanup.
type testServer struct {
	*Server
	addr string
	done chan error
}

func startServer(tb testing.TB, names Names, cfg Config) *testServer {
	tb.Helper()
	pc, ln := listenLoopback(tb)
	ts := &testServer{Server: New(pc, ln, names, cfg, nil), addr: pc.LocalAddr().String(), done: make(chan error, 1)}
	go func() { ts.done <- ts.Serve() }()
	tb.Cleanup(func() { ts.stop(tb) })
	return ts
}

// stop closes the server and waits for Serve, failing after 5 s.
func (ts *testServer) stop(tb testing.TB) {
	ts.Close()
	select {
	case err := <-ts.done:
		if err != nil {
			tb.Errorf("serve: %v", err)
		}
		ts.done <- nil // later stops return at once
	case <-time.After(5 * time.Second):
		tb.Errorf("serve did not return after close")
	}
}

// exchanger sends one query and returns the answer.
type exchanger func(tb testing.TB, m *dns.Msg) *dns.Msg

// exchangers returns the three ways every table test runs: the handler
// with a recorder, and a real client over loopback UDP and TCP.
func exchangers(tb testing.TB, names Names, cfg Config) map[string]exchanger {
	srv := New(nil, nil, names, cfg, nil)
	ts := startServer(tb, names, cfg)
	viaHandler := func(tb testing.TB, m *dns.Msg) *dns.Msg {
		rec := newRecorder("udp")
		srv.Handler().ServeDNS(rec, m)
		if rec.err != nil {
			tb.Fatalf("handler wrote an invalid message: %v", rec.err)
		}
		return rec.msg
	}
	viaNet := func(network string) exchanger {
		return func(tb testing.TB, m *dns.Msg) *dns.Msg {
			c := &dns.Client{Net: network, Timeout: 3 * time.Second}
			r, _, err := c.Exchange(m, ts.addr)
			if err != nil {
				tb.Fatalf("%s exchange: %v", network, err)
			}
			return r
		}
	}
	return map[string]exchanger{"handler": viaHandler, "udp": viaNet("udp"), "tcp": viaNet("tcp")}
}

// rawUDP sends b to addr and returns the answer, or nil after wait.
func rawUDP(tb testing.TB, addr string, b []byte, wait time.Duration) []byte {
	tb.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		tb.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		tb.Fatal(err)
	}
	return buf[:n]
}

// aAddrs returns the A record addresses of m in order.
func aAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, d time.Duration, cond func() bool) bool {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}
