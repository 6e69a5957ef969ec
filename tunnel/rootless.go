package tunnel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// ErrNoPrivilege is what an error wraps when the daemon lacked a
// privilege for an endpoint: a capability over the namespace, or access to
// /dev/net/tun. Its message names what is missing.
var ErrNoPrivilege = errors.New("missing privilege")

// privilegeError is an endpoint's failure for want of privilege, with a
// hint naming what is missing.
type privilegeError struct {
	err  error
	hint string
}

func (p *privilegeError) Error() string { return p.err.Error() + ": " + p.hint }
func (p *privilegeError) Unwrap() []error {
	return []error{p.err, ErrNoPrivilege}
}

// deniedErr reports whether err is EPERM or EACCES, wrapped or only
// spelled out (the namespace helpers format errors with %v).
func deniedErr(err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, syscall.EPERM.Error()) || strings.Contains(s, syscall.EACCES.Error())
}

// privilegeHint adds to err, when it is a refusal for want of privilege,
// which privilege was missing for the endpoint in netns; rootless says
// whether the daemon runs in rootless mode. Other errors pass unchanged.
func privilegeHint(err error, netns string, rootless bool) error {
	if err == nil || !deniedErr(err) {
		return err
	}
	who := fmt.Sprintf("uid %d", os.Geteuid())
	if rootless {
		who = "rootless mode, " + who
	}
	var hint string
	if strings.Contains(err.Error(), "/dev/net/tun") {
		mode := "unknown mode"
		if fi, serr := os.Stat("/dev/net/tun"); serr == nil {
			mode = fmt.Sprintf("mode %04o", fi.Mode().Perm())
		}
		hint = fmt.Sprintf("the daemon (%s) may not open /dev/net/tun (%s); most distributions ship it 0666", who, mode)
	} else {
		hint = fmt.Sprintf("the daemon (%s) lacks CAP_NET_ADMIN and CAP_SYS_ADMIN over the user namespace that owns %s; "+
			"without root it can serve only namespaces of a user namespace it owns, such as a rootless container's through the OCI hook", who, netns)
	}
	return &privilegeError{err: err, hint: hint}
}
