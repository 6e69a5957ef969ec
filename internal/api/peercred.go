package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// ErrPermission is what a client's error wraps when the daemon refused
// the caller (403): the caller is neither root, nor the daemon's own
// user, nor in the API group.
var ErrPermission = errors.New("permission denied")

// Listen creates the unix socket at path with mode 0660, creating its
// directory (0755) if needed. When gid ≥ 0 the socket's group becomes
// gid (host.api_group), so members of that group may connect; the
// returned listener also records every connection's peer credentials,
// and Serve refuses callers that are not root, not the daemon's own user
// and not in group gid, whatever the socket file's mode. A stale socket
// left by a daemon that died is replaced; a socket that a live daemon
// still answers on is an error.
func Listen(path string, gid int) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create api socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("api socket %s is in use by another daemon", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot remove stale api socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on api socket: %w", err)
	}
	success := false
	defer func() {
		if !success {
			ln.Close()
		}
	}()
	if gid >= 0 {
		// The owner stays the daemon's user, which is root in production.
		if err := os.Chown(path, -1, gid); err != nil {
			return nil, fmt.Errorf("cannot give api socket to group %d: %w", gid, err)
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return nil, fmt.Errorf("cannot set api socket mode: %w", err)
	}
	if err := restrictSocket(path); err != nil {
		return nil, fmt.Errorf("cannot restrict api socket to the daemon's user: %w", err)
	}
	success = true
	return newCredListener(ln, gid), nil
}

// Cred is the identity of the process at the other end of a connection,
// as the kernel recorded it when that process connected.
type Cred struct {
	PID    int32    // process id at connect time
	UID    uint32   // effective user id
	GID    uint32   // effective primary group id
	Groups []uint32 // supplementary group ids
}

// credListener wraps a unix listener and attaches each accepted
// connection's peer credentials to it. gid is the permitted group (-1:
// none) and group its name for messages.
type credListener struct {
	net.Listener
	gid   int
	group string
	self  uint32
}

func newCredListener(ln net.Listener, gid int) *credListener {
	cl := &credListener{Listener: ln, gid: gid, self: uint32(os.Geteuid())}
	if gid >= 0 {
		cl.group = strconv.Itoa(gid)
		if g, err := user.LookupGroupId(cl.group); err == nil {
			cl.group = g.Name
		}
	}
	return cl
}

// credConn is an accepted connection with its peer's credentials; cred
// is nil when the kernel would not tell them.
type credConn struct {
	net.Conn
	cred *Cred
	err  error
	fds  fdQueue // descriptors received with the request (fdpass.go)
}

// Accept accepts the next connection and reads its peer credentials.
func (cl *credListener) Accept() (net.Conn, error) {
	c, err := cl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &credConn{Conn: c}
	cc.cred, cc.err = peerCred(c)
	return cc, nil
}

type credKey struct{}

// connContext is the http.Server's ConnContext: it puts the peer's
// credentials, or the error that kept them unknown, into the context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*credConn); ok {
		return context.WithValue(ctx, credKey{}, cc)
	}
	return ctx
}

// permit says why the caller with cred may not use the API, or nil if
// it may: root, the daemon's own user and members of the API group may.
func (cl *credListener) permit(cred Cred) error {
	if cred.UID == 0 || cred.UID == cl.self {
		return nil
	}
	if cl.gid < 0 {
		return fmt.Errorf("%w: uid %d is not root and host.api_group is not set", ErrPermission, cred.UID)
	}
	g := uint32(cl.gid)
	if cred.GID == g || slices.Contains(cred.Groups, g) {
		return nil
	}
	return fmt.Errorf("%w: uid %d is neither root nor in group %s", ErrPermission, cred.UID, cl.group)
}

// authorize refuses with 403 every request whose caller permit refuses
// or whose credentials are unknown.
func (cl *credListener) authorize(h http.Handler, l *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cc, _ := r.Context().Value(credKey{}).(*credConn)
		var err error
		switch {
		case cc == nil:
			err = fmt.Errorf("%w: the caller's credentials are unknown", ErrPermission)
		case cc.cred == nil:
			err = fmt.Errorf("%w: the caller's credentials are unknown: %w", ErrPermission, cc.err)
		default:
			err = cl.permit(*cc.cred)
		}
		if err != nil {
			l.Debug("api caller refused", "error", err)
			writeError(w, l, http.StatusForbidden, err.Error())
			return
		}
		h.ServeHTTP(w, r)
	})
}
