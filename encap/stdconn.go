package encap

import (
	"errors"
	"fmt"
	"net"
)

// Close closes the socket and wakes a pending Read, which returns
// net.ErrClosed; later Reads and Writes return net.ErrClosed too. Close is
// safe to call more than once and from any goroutine; calls after the first
// return nil.
func (c *StdConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := c.udp.Close(); err != nil {
		return fmt.Errorf("cannot close underlay socket: %w", err)
	}
	return nil
}

// closedOr maps the netpoller's "use of closed network connection" to
// net.ErrClosed and wraps anything else.
func closedOr(op string, err error) error {
	if errors.Is(err, net.ErrClosed) {
		return net.ErrClosed
	}
	return fmt.Errorf("%s: %w", op, err)
}
