package api_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// panickyBackend is a backend whose Status panics while armed, as a bug
// in the engine's status code would.
type panickyBackend struct {
	*apitest.Backend
	armed atomic.Bool
}

func (b *panickyBackend) Status() api.Status {
	if b.armed.Load() {
		var peers []api.PeerStatus
		_ = peers[3] // a runtime panic, not a deliberate one
	}
	return b.Backend.Status()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestHandlerPanicRecovered checks that a request whose handler panics is
// answered 500, logged at Error with its stack and counted, and that the
// server goes on serving: the panic concerns one request, so the daemon
// is not stopped (Died is not called). Before this change net/http
// recovered it and logged it at Debug only, with nothing counted.
func TestHandlerPanicRecovered(t *testing.T) {
	var log syncBuffer
	var recovered tally.Counts
	died := make(chan error, 1)
	rep := safe.Reporter{
		L:         slog.New(slog.NewTextHandler(&log, nil)),
		Died:      func(err error) { died <- err },
		Recovered: &recovered,
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(sock, -1)
	if err != nil {
		t.Fatal(err)
	}
	b := &panickyBackend{Backend: apitest.New()}
	srv := api.Serve(ln, b, rep)
	t.Cleanup(func() { srv.Close() })

	b.armed.Store(true)
	code, msg := raw(t, sock, http.MethodGet, "/v1/status", nil)
	if code != http.StatusInternalServerError || !strings.Contains(msg, "internal error") {
		t.Fatalf("panicking request answered %d %q, want 500", code, msg)
	}
	if got := recovered.Snapshot()[api.RecoveredRequest]; got != 1 {
		t.Errorf("recovered %q = %d, want 1", api.RecoveredRequest, got)
	}
	out := log.String()
	for _, want := range []string{"level=ERROR", "index out of range", "panickyBackend).Status"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// Probe: the same request succeeds once the bug is gone, on the same
	// server.
	b.armed.Store(false)
	if _, err := api.NewClient(sock).Status(context.Background()); err != nil {
		t.Fatalf("status after a recovered panic: %v", err)
	}
	select {
	case err := <-died:
		t.Fatalf("a request's panic stopped the daemon: %v", err)
	default:
	}
}

// TestServeReportsDeadListener checks that an accept loop that fails for
// good is reported, so the daemon does not run on unreachable.
func TestServeReportsDeadListener(t *testing.T) {
	died := make(chan error, 1)
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(sock, -1)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.Serve(&failingListener{Listener: ln}, apitest.New(), safe.Reporter{
		L: slog.New(slog.DiscardHandler), Died: func(err error) { died <- err },
	})
	t.Cleanup(func() { srv.Close() })
	if err := <-died; err == nil || !strings.Contains(err.Error(), "api server stopped") {
		t.Fatalf("Died got %v", err)
	}
}

// failingListener fails every Accept with a permanent error, as a closed
// descriptor would.
type failingListener struct{ net.Listener }

func (l *failingListener) Accept() (net.Conn, error) {
	return nil, errors.New("accept: bad file descriptor")
}
