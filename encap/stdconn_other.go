//go:build !linux

package encap

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// StdConn is the production Conn. This portable version, for systems other
// than Linux (a rootless laptop), moves one datagram per system call and
// has no GRO or GSO; the Linux version batches with recvmmsg/sendmmsg.
//
// Concurrency: Read must be called by one goroutine at a time; Write may be
// called concurrently from any number of goroutines; Close may be called
// from any goroutine, any number of times.
type StdConn struct {
	udp    *net.UDPConn
	laddr  netip.AddrPort
	batch  int
	closed atomic.Bool
}

var _ Conn = (*StdConn)(nil)

// Listen opens an IPv4 UDP socket bound to laddr (port 0 picks a free port)
// for batches of up to batch datagrams (0 means DefaultBatchSize). The
// caller owns the returned conn and must Close it.
func Listen(laddr netip.AddrPort, batch int) (*StdConn, error) {
	udp, batch, err := listenUDP4(laddr, batch)
	if err != nil {
		return nil, err
	}
	la := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	return &StdConn{udp: udp, laddr: netip.AddrPortFrom(la.Addr().Unmap(), la.Port()), batch: batch}, nil
}

// Read implements Conn.Read; it returns one datagram per call.
func (c *StdConn) Read(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if err := CheckReadArgs(bufs, sizes, eps); err != nil {
		return 0, err
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	n, ep, err := c.udp.ReadFromUDPAddrPort(bufs[0])
	if err != nil {
		return 0, closedOr("read", err)
	}
	sizes[0], eps[0] = n, netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	return 1, nil
}

// Write implements Conn.Write, one system call per datagram.
func (c *StdConn) Write(bufs [][]byte, dst netip.AddrPort) error {
	a := dst.Addr().Unmap()
	if !a.Is4() {
		return ErrNotIPv4
	}
	dst = netip.AddrPortFrom(a, dst.Port())
	for _, b := range bufs {
		if _, err := c.udp.WriteToUDPAddrPort(b, dst); err != nil {
			return closedOr("write", err)
		}
	}
	return nil
}

// BatchSize returns the batch size given to Listen.
func (c *StdConn) BatchSize() int { return c.batch }

// LocalAddr returns the bound address.
func (c *StdConn) LocalAddr() netip.AddrPort { return c.laddr }

// Offload reports that neither UDP GRO nor GSO is used on this system.
func (c *StdConn) Offload() (gro, gso bool) { return false, false }
