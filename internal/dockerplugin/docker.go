package dockerplugin

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
	"strings"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
)

// RecoveredCall is the kind under which Serve counts plugin calls whose
// handler panicked (api.Status.Recovered).
const RecoveredCall = "docker plugin call"

// Serve serves the plugin protocol on ln, a unix socket, until ln is
// closed. Each connection's peer credentials tell which dockerd is asking.
// As for the API socket, a call whose handler panics is logged with its
// stack, counted and answered 500 with a JSON error, and an accept loop
// that fails is reported to rep, which stops the daemon.
func Serve(ln net.Listener, p *Plugin, rep safe.Reporter) *http.Server {
	p.rep = rep
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer rep.Recover(RecoveredCall, func() {
				writeJSON(w, http.StatusInternalServerError, refusal(errors.New("internal error; see vxwire's log")))
			})
			p.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerPID(c))
		},
	}
	rep.Go("docker plugin server", func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			rep.Fail("docker plugin server", fmt.Errorf("docker plugin server stopped: %w", err))
		}
	})
	return srv
}

// Listen makes the plugin socket at path, replacing a stale one, with
// mode 0600: only root (dockerd) may call it.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", filepath.Dir(path), err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot remove stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cannot restrict %s: %w", path, err)
	}
	return ln, nil
}

type peerKey struct{}

// withPeer carries the request's peer process id into ctx.
func withPeer(ctx context.Context, r *http.Request) context.Context {
	if pid, ok := r.Context().Value(peerKey{}).(int); ok {
		return context.WithValue(ctx, peerKey{}, pid)
	}
	return ctx
}

// docker returns the Docker of the dockerd that made the request in ctx.
func (p *Plugin) docker(ctx context.Context) Docker {
	pid, _ := ctx.Value(peerKey{}).(int)
	return p.dockerFor(pid)
}

// DockerByPID finds the API socket of the dockerd whose process id is
// pid: the first unix:// address of its -H/--host flags, else
// /var/run/docker.sock, reached through /proc/PID/root so that a dockerd
// in its own mount namespace is found too.
func DockerByPID(pid int) Docker {
	if pid <= 0 {
		return dockerAPI{socket: "/var/run/docker.sock"}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	sock := "/var/run/docker.sock"
	if err == nil {
		if s := hostSocket(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")); s != "" {
			sock = s
		}
	}
	return dockerAPI{socket: fmt.Sprintf("/proc/%d/root%s", pid, sock)}
}

// hostSocket returns the first unix socket path among dockerd's -H or
// --host arguments.
func hostSocket(args []string) string {
	for i, a := range args {
		var v string
		switch {
		case (a == "-H" || a == "--host") && i+1 < len(args):
			v = args[i+1]
		case strings.HasPrefix(a, "-H="), strings.HasPrefix(a, "--host="):
			v = a[strings.Index(a, "=")+1:]
		case strings.HasPrefix(a, "-H") && len(a) > 2:
			v = a[2:]
		default:
			continue
		}
		if path, ok := strings.CutPrefix(v, "unix://"); ok && filepath.IsAbs(path) {
			return path
		}
	}
	return ""
}

// dockerAPI asks dockerd through its API socket.
type dockerAPI struct{ socket string }

// Network implements Docker with GET /networks/ID, which lists the
// network's name and each endpoint's container name.
func (d dockerAPI) Network(ctx context.Context, id string) (DockerNetwork, error) {
	if id == "" || strings.ContainsAny(id, "/?#%") {
		return DockerNetwork{}, fmt.Errorf("network id %q", id)
	}
	b, err := d.get(ctx, "/networks/"+id)
	if err != nil {
		return DockerNetwork{}, err
	}
	return parseDockerNetwork(b)
}

// get asks dockerd for path and returns the body of a 200 answer.
func (d dockerAPI) get(ctx context.Context, path string) ([]byte, error) {
	c := http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.socket)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot ask dockerd: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("dockerd: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

// Aliases implements Docker with GET /containers/NAME/json, which
// dockerd answers once it releases the container's lock.
func (d dockerAPI) Aliases(ctx context.Context, container, network string) ([]string, error) {
	b, err := d.get(ctx, "/containers/"+url.PathEscape(container)+"/json")
	if err != nil {
		return nil, err
	}
	var c struct {
		NetworkSettings struct {
			Networks map[string]struct{ Aliases []string }
		}
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("dockerd's container inspect: %w", err)
	}
	return c.NetworkSettings.Networks[network].Aliases, nil
}

// parseDockerNetwork reads the parts of a network inspect body the
// plugin uses.
func parseDockerNetwork(b []byte) (DockerNetwork, error) {
	var raw struct {
		Name       string
		Containers map[string]struct {
			Name       string
			EndpointID string
		}
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return DockerNetwork{}, fmt.Errorf("dockerd's network inspect: %w", err)
	}
	dn := DockerNetwork{Name: raw.Name, Endpoints: map[string]string{}}
	for _, c := range raw.Containers {
		dn.Endpoints[c.EndpointID] = c.Name
	}
	return dn, nil
}
