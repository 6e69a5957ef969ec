package tunnel

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// addrWatch tells, through C, soon after an IPv4 address of the daemon's
// network namespace is added or removed (an rtnetlink RTMGRP_IPV4_IFADDR
// subscription), so that the egress deny list follows at once rather than
// at the next AddressCheck tick. Close ends it.
type addrWatch struct {
	f *os.File
	// C receives a value after one or more changes; it is never closed.
	C chan struct{}
}

// newAddrWatch subscribes to address changes. The socket is non-blocking
// and handed to the runtime's poller, so Close wakes a pending read.
func newAddrWatch() (*addrWatch, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &addrWatch{f: os.NewFile(uintptr(fd), "rtnetlink"), C: make(chan struct{}, 1)}, nil
}

// run reads notifications until Close, signalling C for each; it returns
// on any error but an overrun (ENOBUFS, which still means a change).
func (w *addrWatch) run() {
	b := make([]byte, 16<<10)
	for {
		_, err := w.f.Read(b)
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return
		}
		select {
		case w.C <- struct{}{}:
		default:
		}
	}
}

// Close ends the subscription; run returns.
func (w *addrWatch) Close() error { return w.f.Close() }
