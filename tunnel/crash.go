package tunnel

import (
	"fmt"
	"runtime/debug"
)

// A goroutine of the engine that dies of a panic takes the daemon with it:
// a switch that lost its underlay reader or a port's reader would keep
// answering the API while it forwards nothing, which is worse than a
// restart. goSafe recovers the panic only to log it with its stack and
// report it on Died; the daemon then stops everything and exits non-zero.

// CrashError is what Died reports: which goroutine panicked, with what.
type CrashError struct {
	// Goroutine names the goroutine, such as "read port blue/web".
	Goroutine string
	// Panic is the value the goroutine panicked with.
	Panic any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error implements error.
func (c *CrashError) Error() string {
	return fmt.Sprintf("goroutine %q crashed: %v", c.Goroutine, c.Panic)
}

// Died returns a channel that receives the first crash of any of the
// engine's goroutines. The engine is not usable after that: stop it.
func (e *Engine) Died() <-chan error { return e.died }

// goSafe runs fn in a new goroutine that e.wg counts. If fn panics, the
// panic is logged with its stack and reported on Died.
func (e *Engine) goSafe(name string, fn func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				e.crashed(&CrashError{Goroutine: name, Panic: r, Stack: debug.Stack()})
			}
		}()
		fn()
	}()
}

// crashed logs c and reports it on Died unless a crash is reported
// already.
func (e *Engine) crashed(c *CrashError) {
	e.l.Error("goroutine crashed; stopping", "goroutine", c.Goroutine, "error", fmt.Sprint(c.Panic),
		"stack", string(c.Stack))
	select {
	case e.died <- c:
	default:
	}
}
