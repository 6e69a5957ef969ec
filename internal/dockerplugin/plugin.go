// Package dockerplugin serves Docker's plugin protocol: libnetwork's remote
// network driver and remote IPAM driver, both named vxwire, on a unix
// socket in /run/docker/plugins. It is a door like the API socket, the
// hook and CNI: every request becomes a call of the daemon's runtime
// (network create and remove, attach, detach), so every rule stays there.
//
// Docker does not tell a driver the names it gives networks and
// containers. The plugin asks the dockerd that called it (found through
// the socket's peer credentials) with `GET /networks/ID`, which lists
// both, and names the vxwire network and endpoint after them.
//
// The network driver has scope "local": each host's dockerd keeps its own
// network objects, and `docker network create` runs on every host, as
// with any plugin outside swarm mode. vxwire replicates the network
// itself: the same command on every host joins one overlay network.
// ConnectivityScope is "global": containers reach across hosts.
package dockerplugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/safe"
)

// Name is the name of the network driver and of the IPAM driver.
const Name = "vxwire"

// Runtime is the part of the daemon the plugin drives; *tunnel.Engine
// implements it. Implementations are safe for concurrent use.
type Runtime interface {
	Networks() []api.Network
	CreateNetwork(ctx context.Context, spec api.NetworkSpec) (api.Network, error)
	RemoveNetwork(ctx context.Context, name string) error
	Detach(ctx context.Context, req api.DetachRequest) error
	// ReserveAddress allocates an address of network under key before
	// the endpoint exists; AttachReserved hands it to the endpoint.
	ReserveAddress(ctx context.Context, network, key string, want netip.Addr) (netip.Addr, error)
	ReleaseReservation(network, key string) error
	AttachReserved(ctx context.Context, req api.AttachRequest, key string) (api.Endpoint, error)
	// SetAliases replaces an attached endpoint's DNS aliases.
	SetAliases(ctx context.Context, network, name string, aliases []string) error
}

// Docker answers what the calling dockerd knows about one of its networks.
type Docker interface {
	// Network returns the name of network id and the container name of
	// each of its endpoints, by endpoint id.
	Network(ctx context.Context, id string) (DockerNetwork, error)
	// Aliases returns the --network-alias names container has on
	// network. dockerd answers once the container has started or
	// connected (it holds the container's lock meanwhile), so callers
	// ask after Join returns.
	Aliases(ctx context.Context, container, network string) ([]string, error)
}

// DockerNetwork is what dockerd says about one network.
type DockerNetwork struct {
	Name      string
	Endpoints map[string]string // endpoint id → container name
}

// Plugin is the protocol handler. Its state (Docker's ids and the
// addresses its IPAM requests hold) is saved in a file after every change
// once Restore has named it (see state.go), so that Docker's networks and
// endpoints stay usable across a daemon restart. It is safe for
// concurrent use.
type Plugin struct {
	rt Runtime
	l  *slog.Logger
	// dockerFor returns the Docker of the dockerd whose process id is
	// pid (0 when unknown).
	dockerFor func(pid int) Docker
	// rep reports panics of the calls' background work (Serve sets it
	// before serving).
	rep safe.Reporter

	mu       sync.Mutex
	path     string                // state file; "" keeps the state in memory only
	nets     map[string]*dockerNet // by Docker network id
	eps      map[string]*dockerEp  // by Docker endpoint id
	reserved map[netip.Addr]string // address → reservation key
	// epoch and seq make reservation keys unique across restarts, so a
	// new reservation never takes over one a previous run left behind.
	epoch string
	seq   uint64
}

// dockerNet is a network Docker created with this driver.
type dockerNet struct {
	id        string
	subnet    netip.Prefix
	gateway   netip.Addr
	mtu       int
	encrypted bool
	internal  bool
	name      string // the vxwire network, once known
}

// dockerEp is an endpoint Docker created on one of those networks.
type dockerEp struct {
	net     *dockerNet
	addr    netip.Prefix
	mac     string
	name    string // the vxwire endpoint, once joined
	handoff string // the TAP's name in the daemon's namespace
	// published are the ports -p published for it (publish.go).
	published []api.PublishRef
}

// New returns a plugin driving rt. dockerFor finds the calling dockerd's
// API (nil: by its process's command line, see DockerByPID); l receives
// refusals at Info and nil discards them.
func New(rt Runtime, dockerFor func(pid int) Docker, l *slog.Logger) *Plugin {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if dockerFor == nil {
		dockerFor = DockerByPID
	}
	return &Plugin{rt: rt, l: l, dockerFor: dockerFor, epoch: strconv.FormatInt(time.Now().Unix(), 36),
		nets: map[string]*dockerNet{}, eps: map[string]*dockerEp{}, reserved: map[netip.Addr]string{}}
}

// maxBody bounds a request body; Docker's are a few hundred bytes.
const maxBody = 1 << 20

// errBadRequest marks a body that does not decode: HTTP 400, as the
// protocol asks, rather than a refusal of a well-formed request.
var errBadRequest = errors.New("bad request")

// ServeHTTP answers one protocol call. Refusals are {"Err": "..."} with
// status 200 as docs/remote.md asks; undecodable bodies get 400 and
// unknown methods 404 (which Docker takes as "not implemented").
func (p *Plugin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := p.routes()[r.URL.Path]
	if !ok || r.Method != http.MethodPost {
		writeJSON(w, http.StatusNotFound, refusal(fmt.Errorf("%s %s is not part of the plugin protocol", r.Method, r.URL.Path)))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("%w: body is larger than %d bytes", errBadRequest, maxBody)
	}
	var resp any
	if err == nil {
		resp, err = h(withPeer(r.Context(), r), body)
	}
	switch {
	case errors.Is(err, errBadRequest):
		writeJSON(w, http.StatusBadRequest, refusal(err))
	case err != nil:
		p.l.Info("docker request refused", "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusOK, refusal(err))
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

// refusal is the body that reports err to Docker.
func refusal(err error) errResponse {
	msg := "vxwire: " + err.Error()
	return errResponse{Err: msg, Error: msg}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1+json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decode reads body into v; an empty body is an empty object.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	return nil
}

type handler func(ctx context.Context, body []byte) (any, error)

func (p *Plugin) routes() map[string]handler {
	empty := func(context.Context, []byte) (any, error) { return struct{}{}, nil }
	return map[string]handler{
		"/Plugin.Activate": func(context.Context, []byte) (any, error) {
			return activateResponse{Implements: []string{"NetworkDriver", "IpamDriver"}}, nil
		},
		"/NetworkDriver.GetCapabilities": func(context.Context, []byte) (any, error) {
			return capabilitiesResponse{Scope: "local", ConnectivityScope: "global"}, nil
		},
		"/NetworkDriver.CreateNetwork":               p.createNetwork,
		"/NetworkDriver.DeleteNetwork":               p.deleteNetwork,
		"/NetworkDriver.CreateEndpoint":              p.createEndpoint,
		"/NetworkDriver.DeleteEndpoint":              p.deleteEndpoint,
		"/NetworkDriver.EndpointOperInfo":            p.operInfo,
		"/NetworkDriver.Join":                        p.join,
		"/NetworkDriver.Leave":                       p.leave,
		"/NetworkDriver.DiscoverNew":                 empty,
		"/NetworkDriver.DiscoverDelete":              empty,
		"/NetworkDriver.ProgramExternalConnectivity": p.programExternal,
		"/NetworkDriver.RevokeExternalConnectivity":  p.revokeExternal,
		"/IpamDriver.GetCapabilities": func(context.Context, []byte) (any, error) {
			return ipamCapabilitiesResponse{}, nil
		},
		"/IpamDriver.GetDefaultAddressSpaces": func(context.Context, []byte) (any, error) {
			return addressSpacesResponse{LocalDefaultAddressSpace: Name, GlobalDefaultAddressSpace: Name}, nil
		},
		"/IpamDriver.RequestPool":    p.requestPool,
		"/IpamDriver.ReleasePool":    p.releasePool,
		"/IpamDriver.RequestAddress": p.requestAddress,
		"/IpamDriver.ReleaseAddress": p.releaseAddress,
	}
}

// parseOptions reads CreateNetwork's options into n, refusing any this
// driver does not implement, so that nothing asked for is silently
// ignored.
func parseOptions(opts map[string]any, n *dockerNet) error {
	for k, v := range opts {
		switch k {
		case optInternal:
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("option %s: %v is not a boolean", k, v)
			}
			n.internal = b
		case optIPv6:
			if b, _ := v.(bool); b {
				return errors.New("--ipv6: vxwire networks carry IPv4 only")
			}
		case optGeneric:
			generic, ok := v.(map[string]any)
			if !ok && v != nil {
				return fmt.Errorf("option %s: %v is not a map", k, v)
			}
			if err := parseGeneric(generic, n); err != nil {
				return err
			}
		default:
			return fmt.Errorf("option %s is not supported by the vxwire driver", k)
		}
	}
	return nil
}

// parseGeneric reads the --opt values.
func parseGeneric(opts map[string]any, n *dockerNet) error {
	for k, v := range opts {
		s, _ := v.(string)
		switch k {
		case optEncrypted:
			if s != "" && s != "true" {
				return fmt.Errorf("--opt %s=%s: use --opt %s alone", k, s, k)
			}
			n.encrypted = true
		case optMTU:
			mtu, err := strconv.Atoi(s)
			if err != nil || mtu <= 0 {
				return fmt.Errorf("--opt %s=%v: not a positive integer", k, v)
			}
			n.mtu = mtu
		default:
			return fmt.Errorf("--opt %s: unknown option; the vxwire driver knows %s and %s", k, optEncrypted, optMTU)
		}
	}
	return nil
}
