package netstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxwire/vxwire/internal/ipv4"
)

// echoSock is an EchoConn on an ICMP datagram socket or, with raw, a raw
// ICMP socket; both are connected to the destination.
type echoSock struct {
	f   *os.File // non-blocking, in the netpoller, so deadlines work
	rc  syscall.RawConn
	raw bool
	id  uint16 // the identifier the flow sends (raw sockets only)

	mu  sync.Mutex // Send may be called from several writers
	out []byte     // send scratch; guarded by mu
}

// dial opens an echo socket to dst, trying the ping socket first.
func (o *echoOpener) dial(dst netip.Addr) (EchoConn, error) {
	o.mu.Lock()
	raw := o.raw
	o.mu.Unlock()
	if !raw {
		c, err := openEchoSock(dst, false, 0)
		if err == nil || !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
			return c, err
		}
		o.mu.Lock()
		o.raw = true
		o.mu.Unlock()
	}
	return openEchoSock(dst, true, uint16(o.id.Add(1)))
}

// icmpFilter is SOL_RAW's ICMP_FILTER option: a bit set per ICMP type
// blocks that type on a raw socket.
const (
	solRaw     = 255
	icmpFilter = 1
)

func openEchoSock(dst netip.Addr, raw bool, id uint16) (*echoSock, error) {
	typ := unix.SOCK_DGRAM
	if raw {
		typ = unix.SOCK_RAW
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, fmt.Errorf("cannot open icmp socket: %w", err)
	}
	if raw {
		// Only echo replies: every other ICMP message the host gets
		// would otherwise be copied to every flow.
		if err := unix.SetsockoptInt(fd, solRaw, icmpFilter, ^(1 << ipv4.ICMPEchoReply)); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("cannot filter icmp socket: %w", err)
		}
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cannot route to %s: %w", dst, err)
	}
	f := os.NewFile(uintptr(fd), "icmp")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot use icmp socket: %w", err)
	}
	return &echoSock{f: f, rc: rc, raw: raw, id: id}, nil
}

func (s *echoSock) Send(seq uint16, data []byte) error {
	n := ipv4.ICMPHeaderLen + len(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cap(s.out) < n {
		s.out = make([]byte, n)
	}
	m := s.out[:n]
	m[0], m[1] = ipv4.ICMPEchoRequest, 0
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[4:], s.id) // a ping socket puts its own
	binary.BigEndian.PutUint16(m[6:], seq)
	copy(m[ipv4.ICMPHeaderLen:], data)
	binary.BigEndian.PutUint16(m[2:], ^ipv4.Checksum(m, 0))
	// Send runs on a switch goroutine: a full socket buffer drops the
	// request (EAGAIN) rather than waiting for room.
	var werr error
	if err := s.rc.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), m)
		return true
	}); err != nil {
		return closedOr(err)
	}
	return werr
}

func (s *echoSock) Recv(buf []byte, deadline time.Time) (uint16, []byte, error) {
	if err := s.f.SetReadDeadline(deadline); err != nil {
		return 0, nil, closedOr(err)
	}
	for {
		n, err := s.f.Read(buf)
		if err != nil {
			return 0, nil, closedOr(err)
		}
		m := buf[:n]
		if s.raw {
			// A raw socket reads the IPv4 header too.
			if n < ipv4.MinHeaderLen || int(m[0]&0x0f)*4 > n {
				continue
			}
			m = m[int(m[0]&0x0f)*4:]
		}
		if len(m) < ipv4.ICMPHeaderLen || m[0] != ipv4.ICMPEchoReply ||
			s.raw && binary.BigEndian.Uint16(m[4:]) != s.id {
			continue
		}
		return binary.BigEndian.Uint16(m[6:]), m[ipv4.ICMPHeaderLen:], nil
	}
}

func (s *echoSock) Close() error { return s.f.Close() }

// closedOr maps a closed file to net.ErrClosed.
func closedOr(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	return err
}
