package tunnel

import (
	"github.com/vxwire/vxwire/internal/safe"
)

// A goroutine of the engine that dies of a panic takes the daemon with it:
// a switch that lost its underlay reader or a port's reader would keep
// answering the API while it forwards nothing, which is worse than a
// restart. goSafe recovers the panic only to log it with its stack and
// report it on Died; the daemon then stops everything and exits non-zero.
// The components the engine starts (gossip, the address-block log,
// gateways, DNS) get the same Reporter, so their long-lived goroutines
// report on Died too, and their per-flow goroutines count recovered
// panics in Status().Recovered. See package safe.

// CrashError is what Died reports: which goroutine panicked, with what.
type CrashError = safe.Crash

// Died returns a channel that receives the first crash of any of the
// engine's goroutines. The engine is not usable after that: stop it.
func (e *Engine) Died() <-chan error { return e.died }

// Reporter returns where the engine's goroutines, and those of the
// components it starts, report panics: the engine's log, Died, and the
// recovered counts of Status. The daemon hands it to its API and metrics
// servers too.
func (e *Engine) Reporter() safe.Reporter {
	return safe.Reporter{L: e.l, Died: e.crashed, Recovered: &e.recovered}
}

// goSafe runs fn in a new goroutine that e.wg counts. If fn panics, the
// panic is logged with its stack and reported on Died.
func (e *Engine) goSafe(name string, fn func()) {
	e.wg.Add(1)
	e.Reporter().Go(name, func() {
		defer e.wg.Done()
		fn()
	})
}

// crashed reports c on Died unless a crash is reported already; the
// Reporter logged it.
func (e *Engine) crashed(c error) {
	select {
	case e.died <- c:
	default:
	}
}
