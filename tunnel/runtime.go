package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/atomicfile"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipam"
)

// Runtime-attached endpoints and API-created networks live beside the
// config file's: the engine applies their union (the effective config)
// with the same diffing as a reload. API networks are kept in the Raft log
// (see apinets.go); attached endpoints are kept in state_dir,
// so that a restarted daemon re-attaches containers whose namespaces still
// exist and releases the addresses of those that went away meanwhile.

var _ api.Runtime = (*Engine)(nil)

// dynEndpoint is an endpoint attached through the API.
type dynEndpoint struct {
	Endpoint    config.Endpoint `json:"endpoint"`
	ContainerID string          `json:"container_id,omitempty"`
	// NetNSDev and NetNSIno identify the namespace Endpoint.NetNS named
	// at attach (the device and inode of its nsfs file). A path such as
	// /proc/PID/ns/net or a bind mount may later name another namespace
	// (PID reuse, a new mount): a restarted daemon attaches the endpoint
	// again only if the path still names the same namespace.
	NetNSDev uint64 `json:"netns_dev,omitempty"`
	NetNSIno uint64 `json:"netns_ino,omitempty"`
	// Failed, when set, says why a restarted daemon did not attach the
	// endpoint again; it is kept (name and address reserved) and reported
	// in the status until detached.
	Failed string `json:"failed,omitempty"`
}

// networksFile holds a host's API networks when it has no log.
const networksFile = "networks.json"

// unlockedEffective returns the config file plus the API's networks and
// endpoints. An API network that collides with one of the file (name, VNI
// or subnet) is left out: the file wins. So is an encrypted network on a
// host without a WireGuard key, and a definition that failed to apply.
// Networks left out are noted in e.unapplied, counted once each, and
// reported by network inspect.
func (e *Engine) unlockedEffective() *config.Config {
	eff := *e.file
	eff.Networks = slices.Clone(e.file.Networks)
	eff.Endpoints = slices.Clone(e.file.Endpoints)
	names := make(map[string]bool)
	for _, n := range eff.Networks {
		names[n.Name] = true
	}
	unapplied := make(map[string]unappliedNet)
	for _, n := range e.unlockedAPINetworks() {
		switch f, failed := e.failed[n.Name]; {
		case names[n.Name] || collides(eff.Networks, n):
			unapplied[n.Name] = unappliedNet{n, "it clashes with a network of " + e.file.File, refusedFileClash}
			continue
		case n.Encrypted && e.enc == nil:
			unapplied[n.Name] = unappliedNet{n, "no private_key_file (encrypted networks need a WireGuard key)", refusedUnkeyed}
			continue
		case failed && f.def == n:
			unapplied[n.Name] = unappliedNet{n, f.err, refusedApply}
			continue
		case failed:
			delete(e.failed, n.Name)
		}
		eff.Networks = append(eff.Networks, n)
		names[n.Name] = true
	}
	e.unlockedNoteUnapplied(unapplied)
	keys := make([]epKey, 0, len(e.dynEps))
	for k := range e.dynEps {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b epKey) int {
		if c := strings.Compare(a.network, b.network); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	eff.Endpoints = slices.Grow(eff.Endpoints, len(keys))
	for _, k := range keys {
		if names[k.network] {
			eff.Endpoints = append(eff.Endpoints, e.dynEps[k].Endpoint)
		}
	}
	return &eff
}

// collides reports whether n clashes with one of nets (config.NetworkClash).
func collides(nets []config.Network, n config.Network) bool {
	return slices.ContainsFunc(nets, func(o config.Network) bool { return config.NetworkClash(&n, &o) != nil })
}

func (e *Engine) isFileNetwork(name string) bool {
	for _, n := range e.file.Networks {
		if n.Name == name {
			return true
		}
	}
	return false
}

// Networks lists the networks this host carries.
func (e *Engine) Networks() []api.Network {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]api.Network, 0, len(e.cfg.Networks)+len(e.unapplied))
	for _, n := range e.cfg.Networks {
		out = append(out, e.unlockedNetworkInfo(n))
	}
	for _, u := range e.unapplied {
		out = append(out, e.unlockedUnappliedInfo(u))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Source == "config" && out[j].Source != "config" })
	return out
}

func (e *Engine) unlockedNetworkInfo(n config.Network) api.Network {
	src, count := "api", 0
	if e.isFileNetwork(n.Name) {
		src = "config"
	}
	for k := range e.ports {
		if k.network == n.Name {
			count++
		}
	}
	mtu := 0
	if nw := e.networks[n.Name]; nw != nil {
		mtu = nw.mtu
	}
	return api.Network{
		Name: n.Name, VNI: n.VNI, Subnet: n.Subnet.String(), Gateway: n.Gateway.String(),
		MTU: mtu, Encrypted: n.Encrypted, Egress: n.Egress, Source: src, Endpoints: count,
	}
}

// Network describes one network.
func (e *Engine) Network(name string) (api.Network, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.cfg.Networks {
		if n.Name == name {
			info := e.unlockedNetworkInfo(n)
			info.Members = e.unlockedMembers(name)
			return info, nil
		}
	}
	if u, ok := e.unapplied[name]; ok {
		return e.unlockedUnappliedInfo(u), nil
	}
	return api.Network{}, fmt.Errorf("network %q: %w", name, api.ErrNotFound)
}

// unlockedMembers returns the endpoints of network (every network if
// "") on this host and, from gossip, on the others, sorted by network,
// name and host.
func (e *Engine) unlockedMembers(network string) []api.Endpoint {
	var out []api.Endpoint
	for k, p := range e.ports {
		if network == "" || k.network == network {
			out = append(out, e.unlockedEndpointInfo(k, p))
		}
	}
	for _, ep := range remoteEndpoints(e.unlockedRecords(), e.cfg.Host.Name, e.networks) {
		if network == "" || ep.Network == network {
			out = append(out, ep)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Network < b.Network || a.Network == b.Network && (a.Name < b.Name || a.Name == b.Name && a.Host < b.Host)
	})
	return out
}

// AllEndpoints lists the endpoints of every network this host carries,
// on every host.
func (e *Engine) AllEndpoints() []api.Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unlockedMembers("")
}

// Endpoints lists this host's endpoints.
func (e *Engine) Endpoints() []api.Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]api.Endpoint, 0, len(e.ports))
	for k, p := range e.ports {
		out = append(out, e.unlockedEndpointInfo(k, p))
	}
	for k, err := range e.failedCfg {
		if e.ports[k] == nil {
			out = append(out, api.Endpoint{Network: k.network, Name: k.name, Source: "config", Error: err.Error()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Network < out[j].Network || out[i].Network == out[j].Network && out[i].Name < out[j].Name
	})
	return out
}

func (e *Engine) unlockedEndpointInfo(k epKey, p *port) api.Endpoint {
	ifname := p.cfg.IfName
	if ifname == "" {
		ifname = config.DefaultIfName
	}
	ep := api.Endpoint{
		Network: k.network, Name: k.name, NetNS: p.cfg.NetNS, IfName: ifname,
		Address: p.addr.String(), Gateway: p.net.cfg.Gateway.String(), MAC: p.mac.String(),
		MTU: p.net.mtu, Aliases: p.cfg.Aliases, Source: "config", DefaultRoute: p.defaultRoute,
		Host: e.cfg.Host.Name,
	}
	gw, search := e.unlockedNamespaceNetworks(p)
	ep.DNS = api.DNS{Nameservers: []string{gw.String()}, Search: search}
	if d, ok := e.dynEps[k]; ok {
		ep.Source, ep.ContainerID = "api", d.ContainerID
	}
	return ep
}

// Attach attaches a container's namespace to a network.
func (e *Engine) Attach(ctx context.Context, req api.AttachRequest) (api.Endpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !req.TAPFD {
		return e.unlockedAttach(req)
	}
	return e.unlockedAttachPassed(req, api.TakeTAP(ctx))
}

func (e *Engine) unlockedAttach(req api.AttachRequest) (api.Endpoint, error) {
	if e.stopped {
		return api.Endpoint{}, errStopped
	}
	ep, err := e.unlockedCheckAttach(req)
	if err != nil {
		return api.Endpoint{}, err
	}
	k := epKey{ep.Network, ep.Name}
	id, err := statNetNS(ep.NetNS)
	if err != nil {
		return api.Endpoint{}, fmt.Errorf("%w: netns %s: %v", api.ErrInvalid, ep.NetNS, err)
	}
	if _, ok := e.failedEps[k]; ok {
		// A new attach under the name of a failed endpoint replaces it.
		delete(e.failedEps, k)
		e.alloc.Release(k.network, k.name)
		defer e.unlockedSaveEndpoint(k) // whether the attach succeeds or not
	}
	e.dynEps[k] = dynEndpoint{Endpoint: ep, ContainerID: req.ContainerID, NetNSDev: id.dev, NetNSIno: id.ino}
	handled, err := e.unlockedAttachOne(ep) // see incremental.go
	if !handled {
		var epErrs map[epKey]error
		if epErrs, err = e.unlockedApply(e.unlockedEffective(), true); err == nil {
			err = epErrs[k]
		}
	}
	if err != nil {
		delete(e.dynEps, k)
		if _, ok := e.ports[k]; !ok {
			e.alloc.Release(k.network, k.name)
		}
		return api.Endpoint{}, attachError(err)
	}
	e.unlockedSaveEndpoint(k)
	return e.unlockedEndpointInfo(k, e.ports[k]), nil
}

// attachError classifies an attach failure for the API.
func attachError(err error) error {
	var conflict interface{ Holder() (string, string) }
	var local *ipam.ConflictError
	if errors.As(err, &conflict) || errors.As(err, &local) {
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	return err
}

func (e *Engine) unlockedCheckAttach(req api.AttachRequest) (config.Endpoint, error) {
	bad := func(format string, args ...any) (config.Endpoint, error) {
		return config.Endpoint{}, fmt.Errorf("%w: %s", api.ErrInvalid, fmt.Sprintf(format, args...))
	}
	var n *config.Network
	for i := range e.cfg.Networks {
		if e.cfg.Networks[i].Name == req.Network {
			n = &e.cfg.Networks[i]
		}
	}
	if u, ok := e.unapplied[req.Network]; n == nil && ok {
		return config.Endpoint{}, fmt.Errorf("%w: network %q is not applied on %s: %s", api.ErrConflict, req.Network, e.cfg.Host.Name, u.why)
	}
	if n == nil {
		return config.Endpoint{}, fmt.Errorf("network %q: %w", req.Network, api.ErrNotFound)
	}
	if e.removing[req.Network] {
		return config.Endpoint{}, fmt.Errorf("%w: network %q is being removed", api.ErrConflict, req.Network)
	}
	ep, err := config.NewEndpoint(req.Network, req.Name, req.Aliases, req.IfName, req.Address, req.MAC)
	if err != nil {
		return bad("endpoint %v", err)
	}
	if _, ok := e.ports[epKey{req.Network, req.Name}]; ok {
		return config.Endpoint{}, fmt.Errorf("%w: network %q already has an endpoint %q on this host", api.ErrConflict, req.Network, req.Name)
	}
	// The name is claimed across the cluster in unlockedApply (see
	// claims.go), for every door alike.
	if err := config.CheckContainerEndpointOS(runtime.GOOS); err != nil {
		return bad("%v", err)
	}
	if req.Handoff {
		if req.NetNS != "" {
			return bad("netns %q: a handoff interface is made in the daemon's own namespace; leave netns empty", req.NetNS)
		}
		if !strings.HasPrefix(req.IfName, handoffPrefix) {
			return bad("ifname %q: a handoff interface in the daemon's namespace is named %s...", req.IfName, handoffPrefix)
		}
		req.NetNS = selfNetNS
	}
	if !filepath.IsAbs(req.NetNS) {
		return bad("netns %q is not an absolute path", req.NetNS)
	}
	if _, err := os.Stat(req.NetNS); err != nil {
		return bad("netns %s does not exist", req.NetNS)
	}
	ep.NetNS, ep.Handoff = req.NetNS, req.Handoff
	if a := ep.Address; a.IsValid() {
		if a == n.Gateway {
			return config.Endpoint{}, fmt.Errorf("%w: address %s is the gateway's of network %s", api.ErrConflict, a, n.Name)
		}
		if err := config.CheckEndpointAddr(a, n); err != nil {
			return bad("address: %v", err)
		}
	}
	return ep, nil
}

// Detach detaches an endpoint attached through the API. Detaching what is
// not attached succeeds, and still releases a persisted address.
func (e *Engine) Detach(ctx context.Context, req api.DetachRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var keys []epKey
	for k, d := range e.failedEps {
		if detachMatches(req, k, d) {
			delete(e.failedEps, k)
			e.alloc.Release(k.network, k.name)
			keys = append(keys, k)
		}
	}
	for k, d := range e.dynEps {
		if detachMatches(req, k, d) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		if req.ContainerID == "" && req.Network != "" && req.Name != "" {
			for _, ep := range e.file.Endpoints {
				if ep.Network == req.Network && ep.Name == req.Name {
					return fmt.Errorf("%w: endpoint %q of network %q is defined in %s; remove it there", api.ErrInvalid, req.Name, req.Network, e.file.File)
				}
			}
			e.alloc.Release(req.Network, req.Name)
		}
		return nil
	}
	for _, k := range keys {
		delete(e.dynEps, k)
	}
	var err error
	if len(keys) != 1 || !e.unlockedDetachOne(keys[0]) { // see incremental.go
		_, err = e.unlockedApply(e.unlockedEffective(), true)
	}
	for _, k := range keys {
		e.unlockedSaveEndpoint(k)
	}
	return err
}

// detachMatches reports whether req names the endpoint k, d.
func detachMatches(req api.DetachRequest, k epKey, d dynEndpoint) bool {
	if req.ContainerID != "" {
		return d.ContainerID == req.ContainerID && (req.Network == "" || req.Network == k.network) &&
			(req.IfName == "" || req.IfName == d.Endpoint.IfName)
	}
	return k.network == req.Network && k.name == req.Name
}

func (e *Engine) writeState(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.l.Warn("cannot save state", "error", err, "file", name)
		return
	}
	e.writeFile(name, b)
}

// writeFile replaces state_dir/name so that a crash leaves it whole.
func (e *Engine) writeFile(name string, b []byte) {
	if err := atomicfile.Write(filepath.Join(e.file.Host.StateDir, name), b, 0o600); err != nil {
		e.l.Warn("cannot save state", "error", err, "file", name)
	}
}

// loadRuntimeState restores API networks and endpoints saved by a previous
// run. Endpoints whose namespace is gone have their addresses released.
func (e *Engine) loadRuntimeState(cfg *config.Config) {
	dir := cfg.Host.StateDir
	// This host's own API networks, or those an earlier version
	// gossiped; with a log, the log keeps them (see apinets.go) and
	// these are carried into it once.
	if b, err := os.ReadFile(filepath.Join(dir, networksFile)); err == nil {
		var list []config.Network
		if json.Unmarshal(b, &list) != nil {
			if list, err = gossip.DecodeNetworkState(b); err != nil {
				e.l.Warn("cannot restore networks", "error", err)
			}
		}
		for _, n := range list {
			if e.blocks != nil {
				e.adopt = append(e.adopt, n)
			} else if config.CheckNetwork(&n) == nil {
				e.dynNets[n.Name] = n
			}
		}
	}
	e.loadPublishes(dir)
	e.loadServices(dir)
	for _, d := range e.loadEndpoints(dir) {
		k := epKey{d.Endpoint.Network, d.Endpoint.Name}
		if d.Endpoint.Handoff {
			// Its TAP is wherever the runtime moved it (see persist.go);
			// if that is unknown, or the container is gone, the runtime
			// that took it attaches again.
			if r, ok := e.kept[k]; ok && r.Moved && r.path() != "" {
				e.dynEps[k] = d
			} else {
				e.alloc.Release(k.network, k.name)
				e.dropEndpointRecord(dir, k)
			}
			continue
		}
		id, err := statNetNS(d.Endpoint.NetNS)
		switch {
		case err != nil:
			e.alloc.Release(k.network, k.name)
			e.dropEndpointRecord(dir, k)
			e.l.Info("container gone while stopped; address released", "network", k.network, "endpoint", k.name)
			continue
		case d.Failed != "":
			e.failedEps[k] = d
			continue
		case d.NetNSIno == 0:
			// Saved before identities were kept: adopt the current one.
			d.NetNSDev, d.NetNSIno = id.dev, id.ino
		case id != (nsID{dev: d.NetNSDev, ino: d.NetNSIno}):
			d.Failed = fmt.Sprintf("netns %s now names another namespace (device %d inode %d, attached as %d/%d): the container is gone; detach it",
				d.Endpoint.NetNS, id.dev, id.ino, d.NetNSDev, d.NetNSIno)
			e.failedEps[k] = d
			e.l.Warn("saved endpoint not attached again", "network", k.network, "endpoint", k.name, "error", d.Failed)
			continue
		}
		e.dynEps[k] = d
	}
}
