package metrics

import (
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// TestScrapePanicRecovered checks that a scrape whose handler panics is
// answered 500 and counted, the daemon is not stopped, and the next
// scrape works. (A panic inside the collector never gets here: the
// prometheus registry recovers it and serves the other metrics.)
func TestScrapePanicRecovered(t *testing.T) {
	src := &fakeSource{}
	src.step(2)
	var armed atomic.Bool
	inner := Handler(src)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if armed.Load() {
			var hs []http.Handler
			hs[len(r.URL.Path)].ServeHTTP(w, r) // a runtime panic
		}
		inner.ServeHTTP(w, r)
	})
	var counts tally.Counts
	died := make(chan error, 1)
	srv, err := Serve(netip.MustParseAddrPort("127.0.0.1:0"), h, safe.Reporter{
		L: slog.New(slog.DiscardHandler), Died: func(err error) { died <- err }, Recovered: &counts,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func() int {
		resp, err := http.Get("http://" + srv.Addr + Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	armed.Store(true)
	if code := get(); code != http.StatusInternalServerError {
		t.Fatalf("panicking scrape answered %d, want 500", code)
	}
	if got := counts.Snapshot()[RecoveredScrape]; got != 1 {
		t.Errorf("recovered %q = %d, want 1", RecoveredScrape, got)
	}
	armed.Store(false)
	if code := get(); code != http.StatusOK {
		t.Fatalf("scrape after a recovered panic answered %d", code)
	}
	select {
	case err := <-died:
		t.Fatalf("a scrape's panic was reported as a death: %v", err)
	default:
	}
}
