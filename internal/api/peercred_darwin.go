package api

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerCred reads LOCAL_PEERCRED (getpeereid's source, with the groups)
// and LOCAL_PEERPID of a unix connection.
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
		xc, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if err != nil {
			opErr = fmt.Errorf("cannot read LOCAL_PEERCRED: %w", err)
			return
		}
		n := min(max(int(xc.Ngroups), 0), len(xc.Groups))
		cred = &Cred{UID: xc.Uid}
		if n > 0 {
			// The first group is the effective group, as in getgroups.
			cred.GID = xc.Groups[0]
			cred.Groups = append([]uint32(nil), xc.Groups[1:n]...)
		}
		if pid, err := unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
			cred.PID = int32(pid)
		}
	})
	if err != nil {
		return nil, err
	}
	if opErr != nil {
		return nil, opErr
	}
	return cred, nil
}

// restrictSocket does nothing on darwin: the socket's mode and group, and
// the peer credentials Serve checks, restrict the callers.
func restrictSocket(string) error { return nil }
