package api

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockCred reads SO_PEERCRED and SO_PEERGROUPS of unix socket fd.
func sockCred(fd int) (*Cred, error) {
	uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("cannot read SO_PEERCRED: %w", err)
	}
	cred := &Cred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}
	if cred.Groups, err = peerGroups(fd); err != nil {
		return nil, err
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
