package tunnel

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// panicDevice is a port whose every read panics, as a bug in the read
// path would.
type panicDevice struct{ discardDevice }

func (d *panicDevice) Wait() error { return nil }
func (d *panicDevice) Read(bufs [][]byte, _ []int, _ int) (int, error) {
	bufs[len(bufs)][0] = 1 // a runtime panic, not a deliberate one
	return 0, nil
}

// lockedBuffer is a log sink safe for the engine's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestGoroutineCrashReported starts an engine whose port a's reads panic:
// the panic is logged with its stack, reported on Died, and the engine
// still stops cleanly, so the daemon can exit non-zero.
func TestGoroutineCrashReported(t *testing.T) {
	e, _ := hotPathEngine(t)
	var log lockedBuffer
	e.l = slog.New(slog.NewTextHandler(&log, nil))
	p := e.ports[epKey{"blue", "a"}]
	p.dev = &panicDevice{discardDevice{closed: make(chan struct{})}}
	e.Start()
	var err error
	select {
	case err = <-e.Died():
	case <-time.After(5 * time.Second):
		t.Fatal("no crash reported")
	}
	var c *CrashError
	if !errors.As(err, &c) || c.Goroutine != "read port blue/a" {
		t.Fatalf("Died gave %v, want the crash of read port blue/a", err)
	}
	if !strings.Contains(string(c.Stack), "crash_test.go") {
		t.Errorf("stack does not show where it panicked:\n%s", c.Stack)
	}
	out := log.String()
	for _, want := range []string{"goroutine crashed", "index out of range", "routineReadPort"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	done := make(chan struct{})
	go func() { e.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hangs after a crash")
	}
}

// TestGoSafeSecondCrash checks that crashes after the first are logged
// without blocking, and Died holds the first.
func TestGoSafeSecondCrash(t *testing.T) {
	e, _ := hotPathEngine(t)
	for i := range 3 {
		e.crashed(&CrashError{Goroutine: "boom", Panic: i})
	}
	var c *CrashError
	if err := <-e.Died(); !errors.As(err, &c) || c.Panic != 0 {
		t.Fatalf("Died gave %v, want the first crash", err)
	}
	select {
	case err := <-e.Died():
		t.Fatalf("a second crash was queued: %v", err)
	default:
	}
}
