package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
)

// Path is where Serve exposes the metrics.
const Path = "/metrics"

// Serve listens on addr (host.metrics) and serves h at Path, with a short
// index page at /, until the returned server is shut down. It returns
// once the socket listens, so a busy port is an error here rather than a
// log line later. The server's Addr is the address it listens on, with
// the port the kernel chose when addr's port is 0.
//
// Panics go to rep (see package safe): a scrape whose handler panics is
// answered 500, logged at Error with its stack and counted as
// RecoveredScrape; an accept loop that stops with an error is reported
// to rep.Died.
func Serve(addr netip.AddrPort, h http.Handler, rep safe.Reporter) (*http.Server, error) {
	l := rep.L
	if l == nil {
		l = slog.Default()
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("cannot listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer rep.Recover(RecoveredScrape, func() { http.Error(w, "internal error", http.StatusInternalServerError) })
		h.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "vxwire metrics are at %s\n", Path)
	})
	srv := &http.Server{
		Addr:              ln.Addr().String(),
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(l.Handler(), slog.LevelDebug),
	}
	rep.Go("metrics server", func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rep.Fail("metrics server", fmt.Errorf("metrics server stopped: %w", err))
		}
	})
	return srv, nil
}

// RecoveredScrape is the kind under which Serve counts scrapes whose
// handler panicked (api.Status.Recovered).
const RecoveredScrape = "metrics scrape"
