package safe

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/tally"
)

// logBuffer is a log sink safe for concurrent goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func testReporter() (Reporter, *logBuffer, chan error) {
	var log logBuffer
	died := make(chan error, 4)
	return Reporter{
		L:         slog.New(slog.NewTextHandler(&log, nil)),
		Died:      func(err error) { died <- err },
		Recovered: &tally.Counts{},
	}, &log, died
}

// loopBody is a long-lived loop with a bug: it indexes past its slice.
func loopBody(items []int) {
	for i := 0; ; i++ {
		_ = items[i]
	}
}

// TestGoReportsDeath checks the long-lived kind: the panic is logged at
// Error with the stack of the goroutine that panicked, and Died gets a
// *Crash naming it.
func TestGoReportsDeath(t *testing.T) {
	r, log, died := testReporter()
	r.Go("read things", func() { loopBody([]int{1, 2}) })
	var err error
	select {
	case err = <-died:
	case <-time.After(5 * time.Second):
		t.Fatal("Died was not called")
	}
	var c *Crash
	if !errors.As(err, &c) || c.Goroutine != "read things" {
		t.Fatalf("Died got %v, want the crash of read things", err)
	}
	if !strings.Contains(string(c.Stack), "safe.loopBody") {
		t.Errorf("crash stack does not show the panicking function:\n%s", c.Stack)
	}
	out := log.String()
	for _, want := range []string{"level=ERROR", "goroutine crashed", "index out of range", "safe.loopBody"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if got := r.Recovered.Snapshot(); got != nil {
		t.Errorf("a death was counted as a recovered flow: %v", got)
	}
}

// TestGoWithoutDiedRepanics checks that a Reporter without Died does not
// swallow a long-lived goroutine's death: the panic goes on, as a *Crash.
func TestGoWithoutDiedRepanics(t *testing.T) {
	r := Reporter{L: slog.New(slog.DiscardHandler)}
	got := func() (p any) {
		defer func() { p = recover() }()
		func() {
			defer r.died("loop")
			panic("boom")
		}()
		return nil
	}()
	c, ok := got.(*Crash)
	if !ok || c.Panic != "boom" || c.Goroutine != "loop" {
		t.Fatalf("panic went on as %#v, want a *Crash of loop", got)
	}
}

// TestGoNoPanic checks that a goroutine that ends normally reports nothing.
func TestGoNoPanic(t *testing.T) {
	r, _, died := testReporter()
	done := make(chan struct{})
	r.Go("quiet", func() { close(done) })
	<-done
	select {
	case err := <-died:
		t.Fatalf("Died got %v for a goroutine that returned", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestRecoverClosesOneFlow checks the per-flow kind: the panic is logged
// with its stack, counted by kind, the flow's cleanup runs, Died is not
// called, and the goroutine ends normally.
func TestRecoverClosesOneFlow(t *testing.T) {
	r, log, died := testReporter()
	closed := make(chan struct{}, 2)
	ended := make(chan struct{})
	for range 2 {
		go func() {
			defer close(ended)
			flow(r, func() { closed <- struct{}{} })
		}()
		<-ended
		ended = make(chan struct{})
		select {
		case <-closed:
		default:
			t.Fatal("the flow's cleanup did not run")
		}
	}
	if got := r.Recovered.Snapshot()["flow"]; got != 2 {
		t.Errorf("recovered flow = %d, want 2", got)
	}
	out := log.String()
	for _, want := range []string{"level=ERROR", "recovered a panic", "goroutine=flow", "safe.loopBody"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	select {
	case err := <-died:
		t.Fatalf("a flow's panic was reported as a death: %v", err)
	default:
	}
}

// flow is a per-flow goroutine's body with a bug, recovering as callers do.
func flow(r Reporter, closeFlow func()) {
	defer r.Recover("flow", closeFlow)
	loopBody(nil)
}

// TestRecoverDirect checks Recover deferred directly, as callers use it.
func TestRecoverDirect(t *testing.T) {
	r, _, _ := testReporter()
	func() {
		defer r.Recover("direct", nil)
		panic("boom")
	}()
	if got := r.Recovered.Snapshot()["direct"]; got != 1 {
		t.Fatalf("recovered direct = %d, want 1", got)
	}
	func() {
		defer r.Recover("direct", nil)
	}()
	if got := r.Recovered.Snapshot()["direct"]; got != 1 {
		t.Fatalf("a flow without a panic was counted: %d", got)
	}
}

// TestRecoverAbortHandler checks that net/http's deliberate abort is
// passed on, not logged or counted as a bug.
func TestRecoverAbortHandler(t *testing.T) {
	r, log, _ := testReporter()
	got := func() (p any) {
		defer func() { p = recover() }()
		func() {
			defer r.Recover("api request", nil)
			panic(http.ErrAbortHandler)
		}()
		return nil
	}()
	if got != http.ErrAbortHandler { //nolint:errorlint // the very value
		t.Fatalf("panic went on as %v, want http.ErrAbortHandler", got)
	}
	if r.Recovered.Snapshot() != nil || log.String() != "" {
		t.Errorf("abort was counted or logged: %v %q", r.Recovered.Snapshot(), log.String())
	}
}

// TestFail checks that a loop that stops with an error is reported.
func TestFail(t *testing.T) {
	r, log, died := testReporter()
	want := errors.New("accept: too many open files")
	r.Fail("api server", want)
	if err := <-died; !errors.Is(err, want) {
		t.Fatalf("Died got %v", err)
	}
	if !strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("not logged at error: %q", log.String())
	}
}

// TestZeroReporter checks that the zero Reporter is usable for flows.
func TestZeroReporter(t *testing.T) {
	var r Reporter
	r = r.With("component", "test")
	r.L = slog.New(slog.DiscardHandler)
	func() {
		defer r.Recover("flow", nil)
		panic("boom")
	}()
}
