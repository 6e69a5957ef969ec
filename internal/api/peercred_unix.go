//go:build linux || darwin

package api

import (
	"fmt"
	"net"
	"syscall"
)

// peerCred reads the peer credentials of a unix connection with the
// system's socket options (sockCred).
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
	if err := rc.Control(func(fd uintptr) { cred, opErr = sockCred(int(fd)) }); err != nil {
		return nil, err
	}
	if opErr != nil {
		return nil, opErr
	}
	return cred, nil
}

// restrictSocket does nothing here: the socket's mode and group, and the
// peer credentials Serve checks, restrict the callers.
func restrictSocket(string) error { return nil }
