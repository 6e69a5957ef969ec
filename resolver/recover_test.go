package resolver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// buggyNames panics on lookups of "boom", as a bug behind Names would.
type buggyNames struct{ *fakeNames }

func (b buggyNames) Lookup(network, name string) []netip.Addr {
	if name == "boom" {
		var seen []int
		seen[len(name)]++ // a runtime panic: index out of range
	}
	return b.fakeNames.Lookup(network, name)
}

type crashLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *crashLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *crashLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func crashConfig() (Config, *crashLog, *tally.Counts, chan error) {
	var log crashLog
	counts := &tally.Counts{}
	died := make(chan error, 8)
	cfg := testConfig()
	cfg.Crash = safe.Reporter{
		L:         slog.New(slog.NewTextHandler(&log, nil)),
		Died:      func(err error) { died <- err },
		Recovered: counts,
	}
	return cfg, &log, counts, died
}

// TestTCPConnPanicRecovered checks the per-connection kind: a query that
// panics while served over TCP closes that connection only, is logged
// with its stack and counted; the next connection is served and the
// daemon is not stopped.
func TestTCPConnPanicRecovered(t *testing.T) {
	cfg, log, counts, died := crashConfig()
	ts := startServer(t, buggyNames{testNames()}, cfg)
	c := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
	if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("boom.", dns.TypeA), ts.addr); err == nil {
		t.Fatal("the panicking query was answered")
	}
	// The connection closes before the recovery finishes: wait for it.
	if !eventually(t, 5*time.Second, func() bool { return counts.Snapshot()[RecoveredTCP] == 1 }) {
		t.Errorf("recovered = %v, want one %q", counts.Snapshot(), RecoveredTCP)
	}
	for _, want := range []string{"level=ERROR", "index out of range", "buggyNames.Lookup"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	// Probe: the same server answers the next connection.
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion("web.", dns.TypeA), ts.addr)
	if err != nil || len(aAddrs(r)) != 1 {
		t.Fatalf("query after a recovered panic: %v %v", r, err)
	}
	select {
	case err := <-died:
		t.Fatalf("a connection's panic was reported as a death: %v", err)
	default:
	}
}

// TestUDPReaderPanicReported checks the long-lived kind: a UDP reader
// that panics is a dead loop, reported with its stack so that the daemon
// exits non-zero rather than serving DNS with fewer readers.
func TestUDPReaderPanicReported(t *testing.T) {
	cfg, log, _, died := crashConfig()
	ts := startServer(t, buggyNames{testNames()}, cfg)
	q, err := new(dns.Msg).SetQuestion("boom.", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	rawUDP(t, ts.addr, q, 200*time.Millisecond)
	select {
	case err := <-died:
		var c *safe.Crash
		if !errors.As(err, &c) || c.Goroutine != "dns net1" {
			t.Fatalf("Died got %v, want the crash of dns net1", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dead reader was not reported")
	}
	if !strings.Contains(log.String(), "buggyNames.Lookup") {
		t.Errorf("log lacks the stack:\n%s", log.String())
	}
}

// TestForwardPanicRecovered checks a forwarded query whose upstream dial
// panics: it is counted, and a later local query is answered.
func TestForwardPanicRecovered(t *testing.T) {
	cfg, _, counts, died := crashConfig()
	cfg.Forward = true
	cfg.Upstreams = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	cfg.Dial = func(context.Context, string, string) (net.Conn, error) {
		var d *net.Dialer
		return d.Dial("udp", "127.0.0.1:9") // nil receiver: a runtime panic
	}
	ts := startServer(t, testNames(), cfg)
	q, err := new(dns.Msg).SetQuestion("example.com.", dns.TypeA).Pack()
	if err != nil {
		t.Fatal(err)
	}
	rawUDP(t, ts.addr, q, 200*time.Millisecond)
	if !eventually(t, 5*time.Second, func() bool { return counts.Snapshot()[RecoveredForward] == 1 }) {
		t.Fatalf("recovered = %v, want one %q", counts.Snapshot(), RecoveredForward)
	}
	c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
	if r, _, err := c.Exchange(new(dns.Msg).SetQuestion("web.", dns.TypeA), ts.addr); err != nil || len(aAddrs(r)) != 1 {
		t.Fatalf("query after a recovered panic: %v %v", r, err)
	}
	select {
	case err := <-died:
		t.Fatalf("a forwarded query's panic was reported as a death: %v", err)
	default:
	}
}
