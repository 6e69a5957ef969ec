package api

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// sockCred reads LOCAL_PEERCRED (getpeereid's source, with the groups)
// and LOCAL_PEERPID of unix socket fd.
func sockCred(fd int) (*Cred, error) {
	xc, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("cannot read LOCAL_PEERCRED: %w", err)
	}
	n := min(max(int(xc.Ngroups), 0), len(xc.Groups))
	cred := &Cred{UID: xc.Uid}
	if n > 0 {
		// The first group is the effective group, as in getgroups.
		cred.GID = xc.Groups[0]
		cred.Groups = append([]uint32(nil), xc.Groups[1:n]...)
	}
	if pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
		cred.PID = int32(pid)
	}
	return cred, nil
}
