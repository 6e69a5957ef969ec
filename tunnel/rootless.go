package tunnel

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/tunnel/tap"
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

// unlockedAttachPassed attaches like unlockedAttach, serving the TAP f
// that the caller made in the container's namespace (a rootless
// container's, which the daemon may not enter) instead of making one. f
// is closed unless a port adopted it.
func (e *Engine) unlockedAttachPassed(req api.AttachRequest, f *os.File) (api.Endpoint, error) {
	if f == nil {
		return api.Endpoint{}, fmt.Errorf("%w: tap_fd is set, but no TAP came with the request", api.ErrInvalid)
	}
	k := epKey{req.Network, req.Name}
	if e.passed == nil {
		e.passed = make(map[epKey]*os.File)
	}
	if old, ok := e.passed[k]; ok {
		old.Close()
	}
	e.passed[k] = f
	defer func() {
		if f, ok := e.passed[k]; ok {
			f.Close()
			delete(e.passed, k)
		}
	}()
	return e.unlockedAttach(req)
}

// passedTAP returns, and forgets, the TAP passed for ep, or nil.
func (e *Engine) passedTAP(ep config.Endpoint) *os.File {
	k := epKey{ep.Network, ep.Name}
	f := e.passed[k]
	delete(e.passed, k)
	return f
}

// adoptPassed returns how to open the port of the TAP f passed with an
// attach: kept across restarts (tap.AdoptKept) when the NSHelper gives a
// socket in its namespace, else served until the daemon stops.
func (e *Engine) adoptPassed(f *os.File) func(tap.Config, *slog.Logger) (tap.Device, error) {
	return func(c tap.Config, l *slog.Logger) (tap.Device, error) {
		if e.opts.NSHelper == nil {
			return tap.Adopt(f, c, l)
		}
		if err := tap.CheckOwned(c.NetNS); err != nil {
			f.Close()
			return nil, err
		}
		sock, err := e.opts.NSHelper.Socket(c.NetNS)
		if err != nil {
			l.Warn("cannot reach the container's namespace; its interface will not outlive the daemon", "error", err)
			return tap.Adopt(f, c, l)
		}
		return tap.AdoptKept(f, sock, c, l)
	}
}

// reopenPassed returns how to open the port of ep from the TAP its
// runtime passed to an earlier daemon: the NSHelper reopens it, and
// tap.AdoptKept checks it against the record (Config.Reopen).
func (e *Engine) reopenPassed(ep config.Endpoint) func(tap.Config, *slog.Logger) (tap.Device, error) {
	return func(c tap.Config, l *slog.Logger) (tap.Device, error) {
		if e.opts.NSHelper == nil {
			return nil, fmt.Errorf("%w: the interface was passed by the container's runtime, and no helper reaches its namespace", tap.ErrTAPGone)
		}
		if err := tap.CheckOwned(c.NetNS); err != nil {
			return nil, err
		}
		f, sock, err := e.opts.NSHelper.OpenKept(c.NetNS, c.Name)
		if err != nil {
			return nil, fmt.Errorf("cannot reopen the interface of %s: %w", ep.NetNS, err)
		}
		return tap.AdoptKept(f, sock, c, l)
	}
}
