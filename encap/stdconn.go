package encap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// listenUDP4 checks Listen's arguments and opens the IPv4 UDP socket,
// returning the batch size with its default applied.
func listenUDP4(laddr netip.AddrPort, batch int) (*net.UDPConn, int, error) {
	if batch == 0 {
		batch = DefaultBatchSize
	}
	if batch < 0 || batch > MaxBatchSize {
		return nil, 0, fmt.Errorf("batch size %d out of range 1..%d", batch, MaxBatchSize)
	}
	a := laddr.Addr().Unmap()
	if !a.Is4() {
		return nil, 0, fmt.Errorf("cannot listen on %s: %w", laddr, ErrNotIPv4)
	}
	udp, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, laddr.Port())))
	if err != nil {
		return nil, 0, fmt.Errorf("cannot listen on %s: %w", laddr, err)
	}
	return udp, batch, nil
}

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
