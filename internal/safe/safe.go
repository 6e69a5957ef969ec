// Package safe starts the daemon's goroutines so that none dies silently.
//
// A goroutine either lives as long as the daemon (an accept loop, a
// socket reader, a ticker) or serves one flow (a connection, a request, a
// relayed egress flow). They fail differently:
//
//   - A long-lived goroutine started with Reporter.Go that panics is
//     logged at Error with its stack and reported to Reporter.Died. The
//     daemon then stops and exits non-zero: a daemon that lost its
//     underlay reader or its accept loop would keep answering while it
//     forwards nothing, which is worse than a restart.
//   - A per-flow goroutine defers Reporter.Recover. A panic there is
//     logged at Error with its stack, counted in Reporter.Recovered by
//     the goroutine's kind, and only that flow is closed: a hostile flow
//     must not stop the daemon for everyone else.
//
// Goroutines that third-party code starts (memberlist's listeners, raft's
// loops, gVisor's protocol goroutines, wireguard-go's workers, net/http's
// per-connection goroutines) cannot be wrapped here. Where such a
// goroutine calls vxwire code per flow, that code defers Recover itself:
// the API and metrics handlers (net/http would recover them too, but log
// at the server's ErrorLog level and count nothing), gossip's message
// handlers, and the egress TCP handler gVisor runs per SYN. A panic in
// the rest (raft applying an entry, wireguard-go's callbacks) crashes the
// process, which still exits non-zero.
package safe

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/vxwire/vxwire/internal/tally"
)

// Crash is the error a recovered panic becomes.
type Crash struct {
	// Goroutine names the goroutine, such as "read port blue/web".
	Goroutine string
	// Panic is the value the goroutine panicked with.
	Panic any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error implements error.
func (c *Crash) Error() string {
	return fmt.Sprintf("goroutine %q crashed: %v", c.Goroutine, c.Panic)
}

// Reporter says where a component's goroutines report panics. The zero
// value logs to slog.Default, counts nothing, and lets a long-lived
// goroutine's panic continue (so the process dies of it, as without a
// Reporter). A Reporter is copied by value and safe for concurrent use
// when Died is.
type Reporter struct {
	// L receives the panic with its stack, at Error.
	L *slog.Logger
	// Died is called once per crashed long-lived goroutine with its
	// *Crash. It must not block; nil re-panics instead.
	Died func(error)
	// Recovered counts recovered per-flow panics by goroutine kind; nil
	// counts nothing.
	Recovered *tally.Counts
}

// With returns a copy of r whose logger is r's logger with args.
func (r Reporter) With(args ...any) Reporter {
	r.L = r.logger().With(args...)
	return r
}

func (r Reporter) logger() *slog.Logger {
	if r.L == nil {
		return slog.Default()
	}
	return r.L
}

// Go runs fn in a new goroutine named name. If fn panics, the panic is
// logged with its stack and reported to Died.
func (r Reporter) Go(name string, fn func()) {
	go func() {
		defer r.died(name)
		fn()
	}()
}

// died is deferred by Go; it must call recover itself.
func (r Reporter) died(name string) {
	p := recover()
	if p == nil {
		return
	}
	c := &Crash{Goroutine: name, Panic: p, Stack: debug.Stack()}
	r.logger().Error("goroutine crashed; stopping", "goroutine", name, "error", fmt.Sprint(p), "stack", string(c.Stack))
	if r.Died == nil {
		panic(c)
	}
	r.Died(c)
}

// Fail reports that the long-lived goroutine name stopped with err when
// it should not have (an accept loop whose listener failed): it logs err
// and reports it to Died, or only logs it when Died is nil.
func (r Reporter) Fail(name string, err error) {
	r.logger().Error("goroutine stopped; stopping", "goroutine", name, "error", err)
	if r.Died != nil {
		r.Died(err)
	}
}

// Recover, deferred directly in a per-flow goroutine of kind name (such
// as "egress tcp"), recovers a panic of that goroutine: it logs it with
// its stack, counts it under name and calls closeFlow (may be nil) to
// release that one flow. It reports whether it recovered a panic.
//
// Recover must be the deferred function itself (defer r.Recover(...)),
// not called from one, or recover sees no panic.
func (r Reporter) Recover(name string, closeFlow func()) bool {
	p := recover()
	if p == nil {
		return false
	}
	if p == http.ErrAbortHandler { //nolint:errorlint // net/http panics with this very value
		panic(p) // net/http's own way to abort a response; it logs nothing
	}
	r.logger().Error("recovered a panic; closing the flow", "goroutine", name, "error", fmt.Sprint(p),
		"stack", string(debug.Stack()))
	if r.Recovered != nil {
		r.Recovered.Add(name)
	}
	if closeFlow != nil {
		closeFlow()
	}
	return true
}
