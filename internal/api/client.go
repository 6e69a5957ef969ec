package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// SocketPath resolves which socket a client uses: flag if non-empty, else
// VXWIRE_SOCKET, else $XDG_RUNTIME_DIR/vxwire/vxwire.sock when that
// socket exists (the rootless default of host.api_socket: the user's own
// daemon, found also by a hook that a rootless runtime runs as root of
// its user namespace), else DefaultSocket.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv(SocketEnv); env != "" {
		return env
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rt) {
		p := filepath.Join(rt, "vxwire", "vxwire.sock")
		if fi, err := os.Stat(p); err == nil && fi.Mode().Type() == os.ModeSocket {
			return p
		}
	}
	return DefaultSocket
}

// ErrUnreachable is what a client's error wraps when it could not
// connect to the daemon's socket at all.
var ErrUnreachable = errors.New("cannot reach the daemon")

// ResponseError is a non-2xx answer of the daemon. Its message is the
// daemon's; it unwraps to ErrNotFound, ErrConflict, ErrInvalid or
// ErrPermission when the status code is one of theirs, so errors.Is
// works as it does on the daemon's side.
type ResponseError struct {
	// Code is the HTTP status code.
	Code int
	// Message is the daemon's error message.
	Message string
}

// Error returns the daemon's message.
func (e *ResponseError) Error() string { return e.Message }

// Unwrap returns the sentinel error of the status code, or nil.
func (e *ResponseError) Unwrap() error {
	switch e.Code {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return ErrInvalid
	case http.StatusForbidden:
		return ErrPermission
	}
	return nil
}

// Client talks to a daemon over its unix socket. It is safe for concurrent
// use. Each call is bounded by its context and, in any case, by a little
// more than the server's longest bound (AttachTimeout).
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, path, err)
			}
			return c, nil
		},
	}
	return &Client{path: path, hc: &http.Client{Transport: tr, Timeout: AttachTimeout + 15*time.Second}}
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	if err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Peers lists the peer hosts with their counters.
func (c *Client) Peers(ctx context.Context) ([]PeerStatus, error) {
	var ps []PeerStatus
	err := c.do(ctx, http.MethodGet, "/v1/peers", nil, &ps)
	return ps, err
}

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var ns []Network
	err := c.do(ctx, http.MethodGet, "/v1/networks", nil, &ns)
	return ns, err
}

// Network describes the network called name; the error wraps
// ErrNotFound if there is none.
func (c *Client) Network(ctx context.Context, name string) (Network, error) {
	var n Network
	err := c.do(ctx, http.MethodGet, "/v1/networks/"+url.PathEscape(name), nil, &n)
	return n, err
}

// CreateNetwork creates a network on every host.
func (c *Client) CreateNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	var n Network
	err := c.do(ctx, http.MethodPost, "/v1/networks", spec, &n)
	return n, err
}

// RemoveNetwork removes an API-created network everywhere.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/networks/"+url.PathEscape(name), nil, nil)
}

// Endpoints lists this host's endpoints.
func (c *Client) Endpoints(ctx context.Context) ([]Endpoint, error) {
	var es []Endpoint
	err := c.do(ctx, http.MethodGet, "/v1/endpoints", nil, &es)
	return es, err
}

// AllEndpoints lists the endpoints of every host, on the networks this
// host carries.
func (c *Client) AllEndpoints(ctx context.Context) ([]Endpoint, error) {
	var es []Endpoint
	err := c.do(ctx, http.MethodGet, "/v1/endpoints?all=1", nil, &es)
	return es, err
}

// Attach attaches a container's namespace to a network.
func (c *Client) Attach(ctx context.Context, req AttachRequest) (Endpoint, error) {
	var ep Endpoint
	err := c.do(ctx, http.MethodPost, "/v1/endpoints", req, &ep)
	return ep, err
}

// Detach detaches an endpoint; detaching one that is not attached
// succeeds.
func (c *Client) Detach(ctx context.Context, req DetachRequest) error {
	return c.do(ctx, http.MethodDelete, "/v1/endpoints", req, nil)
}

// do sends in (if not nil) as the JSON body and decodes the answer into
// out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.doWith(ctx, c.hc, method, path, in, out)
}

// doWith is do through hc.
func (c *Client) doWith(ctx context.Context, hc *http.Client, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://vxwire"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, ErrUnreachable) {
			var ue *url.Error
			if errors.As(err, &ue) {
				return ue.Err
			}
			return err
		}
		return fmt.Errorf("request to the daemon at %s failed: %w", c.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("cannot read the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = "daemon answered " + resp.Status
		}
		return &ResponseError{Code: resp.StatusCode, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("cannot decode the daemon's answer: %w", err)
	}
	return nil
}
