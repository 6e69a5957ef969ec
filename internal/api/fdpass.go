//go:build unix

package api

// Passing a rootless container's TAP to the daemon: the client sends the
// attach request's first bytes with the descriptor as SCM_RIGHTS, the
// server's connection collects descriptors as it reads, and the attach
// handler hands the one that came with its request to the Backend
// through the context (TakeTAP). A connection keeps at most maxConnFDs;
// any other, and any the handler does not take, is closed.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxConnFDs is how many descriptors one API connection may carry.
const maxConnFDs = 1

// fdQueue holds the descriptors a connection received. It is safe for
// concurrent use.
type fdQueue struct {
	mu     sync.Mutex
	files  []*os.File
	closed bool
}

// add keeps the descriptors of one control message, closing those over
// the limit or arriving after close.
func (q *fdQueue) add(fds []int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, fd := range fds {
		if q.closed || len(q.files) >= maxConnFDs {
			unix.Close(fd)
			continue
		}
		// Non-blocking before NewFile, so the file uses the poller.
		unix.SetNonblock(fd, true)
		q.files = append(q.files, os.NewFile(uintptr(fd), "passed-fd"))
	}
}

// take removes and returns the oldest descriptor, or nil.
func (q *fdQueue) take() *os.File {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.files) == 0 {
		return nil
	}
	f := q.files[0]
	q.files = q.files[1:]
	return f
}

// close closes what is left; later descriptors are closed on arrival.
func (q *fdQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for _, f := range q.files {
		f.Close()
	}
	q.files = nil
}

// Read reads like the connection's Read and keeps any descriptors that
// arrive with the bytes (SCM_RIGHTS). Other control messages are ignored.
func (cc *credConn) Read(b []byte) (int, error) {
	uc, ok := cc.Conn.(*net.UnixConn)
	if !ok {
		return cc.Conn.Read(b)
	}
	var oob [64]byte // room for a few descriptors' control message
	n, oobn, _, _, err := uc.ReadMsgUnix(b, oob[:])
	if oobn > 0 {
		cc.fds.add(parseRights(oob[:oobn]))
	}
	// ReadMsgUnix returns -1 with its error (a deadline passed, say),
	// where Read returns 0; net/http's bufio panics on a negative count.
	return max(n, 0), err
}

// Close closes the connection and any descriptor no handler took.
func (cc *credConn) Close() error {
	cc.fds.close()
	return cc.Conn.Close()
}

// parseRights returns the descriptors of the SCM_RIGHTS messages in oob.
func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

// tapKey carries a request's passed TAP in its context.
type tapKey struct{}

// tapHolder is a passed TAP until a Backend takes it.
type tapHolder struct {
	mu sync.Mutex
	f  *os.File
}

// withPassedTAP moves the descriptor that came with r's connection into
// the returned context, or reports that there is none.
func withPassedTAP(r *http.Request) (context.Context, *tapHolder, error) {
	cc, _ := r.Context().Value(credKey{}).(*credConn)
	var f *os.File
	if cc != nil {
		f = cc.fds.take()
	}
	if f == nil {
		return nil, nil, fmt.Errorf("%w: tap_fd is set, but no descriptor came with the request (send it as SCM_RIGHTS on the unix socket)", ErrInvalid)
	}
	h := &tapHolder{f: f}
	return context.WithValue(r.Context(), tapKey{}, h), h, nil
}

// release closes the descriptor if no Backend took it.
func (h *tapHolder) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f != nil {
		h.f.Close()
		h.f = nil
	}
}

// TakeTAP returns the TAP passed with an attach request whose TAPFD is
// set, or nil; the caller owns it from then on. A Backend's Attach calls
// it once.
func TakeTAP(ctx context.Context) *os.File {
	h, _ := ctx.Value(tapKey{}).(*tapHolder)
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.f
	h.f = nil
	return f
}

// rightsConn sends f with its first write, then writes plainly.
type rightsConn struct {
	*net.UnixConn
	f    *os.File
	once sync.Once
}

func (c *rightsConn) Write(b []byte) (int, error) {
	sent := false
	var n int
	var err error
	c.once.Do(func() {
		sent = true
		n, _, err = c.WriteMsgUnix(b, unix.UnixRights(int(c.f.Fd())), nil)
	})
	if sent {
		return n, err
	}
	return c.UnixConn.Write(b)
}

// AttachTAP attaches like Attach, sending tap (a TAP named req.IfName,
// default eth0, made in req.NetNS) to the daemon with the request; the
// daemon serves it, and the caller then configures the link from the
// answer (address, gateway when DefaultRoute, MAC and MTU). The caller
// keeps its own copy of tap, which it may close once this returns.
func (c *Client) AttachTAP(ctx context.Context, req AttachRequest, tap *os.File) (Endpoint, error) {
	req.TAPFD = true
	hc := &http.Client{Timeout: AttachTimeout + 15*time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", c.path)
			if err != nil {
				return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, c.path, err)
			}
			return &rightsConn{UnixConn: conn.(*net.UnixConn), f: tap}, nil
		},
	}}
	defer hc.CloseIdleConnections()
	var ep Endpoint
	err := c.doWith(ctx, hc, http.MethodPost, "/v1/endpoints", req, &ep)
	return ep, err
}
