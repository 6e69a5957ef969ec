package api

import (
	"fmt"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCred reads SO_PEERCRED and SO_PEERGROUPS of a unix connection.
func peerCred(c net.Conn) (*Cred, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T carries no peer credentials", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *Cred
	var opErr error
	err = rc.Control(func(fd uintptr) {
		uc, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			opErr = fmt.Errorf("cannot read SO_PEERCRED: %w", err)
			return
		}
		cred = &Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}
		cred.Groups, opErr = peerGroups(int(fd))
	})
	if err != nil {
		return nil, err
	}
	if opErr != nil {
		return nil, opErr
	}
	return cred, nil
}

// peerGroups reads SO_PEERGROUPS, the supplementary groups the peer had
// when it connected. golang.org/x/sys has no wrapper for it.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 16)
	for {
		size := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == 0:
			return buf[:size/4], nil
		case errno == unix.ERANGE && int(size/4) > len(buf):
			buf = make([]uint32, size/4)
		default:
			return nil, fmt.Errorf("cannot read SO_PEERGROUPS: %w", errno)
		}
	}
}

// restrictSocket does nothing on Linux: the socket's mode and group, and
// the peer credentials Serve checks, restrict the callers.
func restrictSocket(string) error { return nil }
