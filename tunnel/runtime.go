package tunnel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vxwire/vxwire/internal/atomicfile"
	"github.com/vxwire/vxwire/internal/ipv4"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipam"
)

// Runtime-attached endpoints and API-created networks live beside the
// config file's: the engine applies their union (the effective config)
// with the same diffing as a reload. API networks replicate through gossip
// and are kept in state_dir; attached endpoints are kept in state_dir too,
// so that a restarted daemon re-attaches containers whose namespaces still
// exist and releases the addresses of those that went away meanwhile.

var _ api.Runtime = (*Engine)(nil)

// dynEndpoint is an endpoint attached through the API.
type dynEndpoint struct {
	Endpoint    config.Endpoint `json:"endpoint"`
	ContainerID string          `json:"container_id,omitempty"`
}

const (
	endpointsFile = "endpoints.json"
	networksFile  = "networks.json"
)

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// unlockedEffective returns the config file plus the API's networks and
// endpoints. An API network that collides with one of the file (name, VNI
// or subnet) is left out: the file wins.
func (e *Engine) unlockedEffective() *config.Config {
	eff := *e.file
	eff.Networks = slices.Clone(e.file.Networks)
	eff.Endpoints = slices.Clone(e.file.Endpoints)
	names := make(map[string]bool)
	for _, n := range eff.Networks {
		names[n.Name] = true
	}
	for _, n := range e.unlockedAPINetworks() {
		if names[n.Name] || collides(eff.Networks, n) {
			continue
		}
		eff.Networks = append(eff.Networks, n)
		names[n.Name] = true
	}
	keys := make([]epKey, 0, len(e.dynEps))
	for k := range e.dynEps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].network < keys[j].network || keys[i].network == keys[j].network && keys[i].name < keys[j].name
	})
	for _, k := range keys {
		if names[k.network] {
			eff.Endpoints = append(eff.Endpoints, e.dynEps[k].Endpoint)
		}
	}
	return &eff
}

// unlockedAPINetworks returns the API-created networks: the replicated set
// when gossip runs, else this host's own.
func (e *Engine) unlockedAPINetworks() []config.Network {
	if e.cluster == nil {
		out := make([]config.Network, 0, len(e.dynNets))
		for _, n := range e.dynNets {
			out = append(out, n)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		return out
	}
	var out []config.Network
	for _, d := range e.cluster.Networks() {
		out = append(out, config.Network{
			Name: d.Name, VNI: d.VNI, Subnet: d.Subnet, Gateway: d.Gateway,
			MTU: d.MTU, Encrypted: d.Encrypted, Egress: d.Egress,
		})
	}
	return out
}

func collides(nets []config.Network, n config.Network) bool {
	for _, o := range nets {
		if o.Name == n.Name || o.VNI == n.VNI || o.Subnet.Overlaps(n.Subnet) {
			return true
		}
	}
	return false
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
	out := make([]api.Network, 0, len(e.cfg.Networks))
	for _, n := range e.cfg.Networks {
		out = append(out, e.unlockedNetworkInfo(n))
	}
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
			return e.unlockedNetworkInfo(n), nil
		}
	}
	return api.Network{}, fmt.Errorf("network %q: %w", name, api.ErrNotFound)
}

// CreateNetwork creates a network on every host.
func (e *Engine) CreateNetwork(ctx context.Context, spec api.NetworkSpec) (api.Network, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return api.Network{}, errStopped
	}
	n, err := e.unlockedCheckSpec(spec)
	if err != nil {
		return api.Network{}, err
	}
	if e.cluster != nil {
		if err := e.cluster.PutNetwork(gossip.NetworkDef{
			Name: n.Name, VNI: n.VNI, Subnet: n.Subnet, Gateway: n.Gateway,
			MTU: n.MTU, Encrypted: n.Encrypted, Egress: n.Egress,
		}); err != nil {
			return api.Network{}, fmt.Errorf("network %q: %w: %v", n.Name, api.ErrConflict, err)
		}
	} else {
		e.dynNets[n.Name] = n
	}
	e.unlockedSaveNetworks()
	if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
		return api.Network{}, err
	}
	e.l.Info("network created", "network", n.Name, "vni", n.VNI, "subnet", n.Subnet.String())
	return e.unlockedNetworkInfo(n), nil
}

// unlockedCheckSpec validates a network request against the networks
// known and fills in defaults.
func (e *Engine) unlockedCheckSpec(spec api.NetworkSpec) (config.Network, error) {
	bad := func(format string, args ...any) (config.Network, error) {
		return config.Network{}, fmt.Errorf("%w: %s", api.ErrInvalid, fmt.Sprintf(format, args...))
	}
	if !labelRE.MatchString(spec.Name) {
		return bad("network name %q is not a DNS label (a-z, 0-9, -; at most 63)", spec.Name)
	}
	subnet, err := netip.ParsePrefix(spec.Subnet)
	if err != nil || !subnet.Addr().Is4() {
		return bad("subnet %q is not an IPv4 CIDR", spec.Subnet)
	}
	if subnet != subnet.Masked() {
		return bad("subnet %s is not a network address; did you mean %s?", subnet, subnet.Masked())
	}
	if subnet.Bits() > 30 {
		return bad("subnet %s is too small: at most /30", subnet)
	}
	n := config.Network{Name: spec.Name, VNI: spec.VNI, Subnet: subnet, MTU: spec.MTU, Encrypted: spec.Encrypted, Egress: true}
	if spec.Egress != nil {
		n.Egress = *spec.Egress
	}
	if spec.Gateway == "" {
		n.Gateway = subnet.Addr().Next()
	} else if n.Gateway, err = netip.ParseAddr(spec.Gateway); err != nil || !subnet.Contains(n.Gateway) ||
		n.Gateway == subnet.Addr() || n.Gateway == ipv4.Broadcast(subnet) {
		return bad("gateway %q is not a host address of %s", spec.Gateway, subnet)
	}
	if n.MTU != 0 && (n.MTU < config.MinMTU || n.MTU > config.MaxNetworkMTU) {
		return bad("mtu %d is outside %d..%d", n.MTU, config.MinMTU, config.MaxNetworkMTU)
	}
	if n.Encrypted && e.enc == nil {
		return bad("encrypted networks need [host] private_key_file on this host")
	}
	for _, o := range e.cfg.Networks {
		switch {
		case o.Name == n.Name:
			return config.Network{}, fmt.Errorf("%w: network %q exists", api.ErrConflict, n.Name)
		case n.VNI != 0 && o.VNI == n.VNI:
			return config.Network{}, fmt.Errorf("%w: vni %d is used by network %q", api.ErrConflict, n.VNI, o.Name)
		case o.Subnet.Overlaps(n.Subnet):
			return config.Network{}, fmt.Errorf("%w: subnet %s overlaps %s of network %q", api.ErrConflict, n.Subnet, o.Subnet, o.Name)
		}
	}
	if n.VNI == 0 {
		n.VNI = config.MinVNI
		for slices.ContainsFunc(e.cfg.Networks, func(o config.Network) bool { return o.VNI == n.VNI }) {
			n.VNI++
		}
	} else if n.VNI < config.MinVNI || n.VNI > config.MaxVNI {
		return bad("vni %d is outside %d..%d", n.VNI, config.MinVNI, config.MaxVNI)
	}
	return n, nil
}

// RemoveNetwork removes an API-created network everywhere.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isFileNetwork(name) {
		return fmt.Errorf("%w: network %q is defined in %s; remove it there", api.ErrInvalid, name, e.file.File)
	}
	found := slices.ContainsFunc(e.cfg.Networks, func(n config.Network) bool { return n.Name == name })
	if !found {
		return fmt.Errorf("network %q: %w", name, api.ErrNotFound)
	}
	var attached []string
	for k := range e.ports {
		if k.network == name {
			attached = append(attached, k.name)
		}
	}
	if len(attached) > 0 {
		sort.Strings(attached)
		return fmt.Errorf("%w: network %q has endpoints attached on this host: %v; detach them first", api.ErrConflict, name, attached)
	}
	if e.cluster != nil {
		if err := e.cluster.DeleteNetwork(name); err != nil {
			return err
		}
	}
	delete(e.dynNets, name)
	e.unlockedSaveNetworks()
	if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
		return err
	}
	e.l.Info("network removed", "network", name)
	return nil
}

// Endpoints lists this host's endpoints.
func (e *Engine) Endpoints() []api.Endpoint {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]api.Endpoint, 0, len(e.ports))
	for k, p := range e.ports {
		out = append(out, e.unlockedEndpointInfo(k, p))
	}
	for k, err := range e.failed {
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
	return e.unlockedAttach(req)
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
	e.dynEps[k] = dynEndpoint{Endpoint: ep, ContainerID: req.ContainerID}
	epErrs, err := e.unlockedApply(e.unlockedEffective(), true)
	if err == nil {
		err = epErrs[k]
	}
	if err != nil {
		delete(e.dynEps, k)
		if _, ok := e.ports[k]; !ok {
			e.alloc.Release(k.network, k.name)
		}
		return api.Endpoint{}, attachError(err)
	}
	e.unlockedSaveEndpoints()
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
	if n == nil {
		return config.Endpoint{}, fmt.Errorf("network %q: %w", req.Network, api.ErrNotFound)
	}
	if !labelRE.MatchString(req.Name) {
		return bad("endpoint name %q is not a DNS label (a-z, 0-9, -; at most 63)", req.Name)
	}
	if _, ok := e.ports[epKey{req.Network, req.Name}]; ok {
		return config.Endpoint{}, fmt.Errorf("%w: network %q already has an endpoint %q on this host", api.ErrConflict, req.Network, req.Name)
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
	ep := config.Endpoint{Network: req.Network, Name: req.Name, NetNS: req.NetNS, IfName: req.IfName, Aliases: req.Aliases, Handoff: req.Handoff}
	if ep.IfName == "" {
		ep.IfName = config.DefaultIfName
	}
	if err := config.CheckIfName(ep.IfName); err != nil {
		return bad("ifname: %v", err)
	}
	for _, a := range req.Aliases {
		if !labelRE.MatchString(a) {
			return bad("alias %q is not a DNS label", a)
		}
	}
	if req.Address != "" {
		a, err := netip.ParseAddr(req.Address)
		if err != nil || !a.Is4() || !n.Subnet.Contains(a) || a == n.Gateway || a == n.Subnet.Addr() || a == ipv4.Broadcast(n.Subnet) {
			return bad("address %q is not a free host address of %s", req.Address, n.Subnet)
		}
		ep.Address = a
	}
	if req.MAC != "" {
		m, err := net.ParseMAC(req.MAC)
		if err != nil || len(m) != 6 || m[0]&1 == 1 || MAC(m) == (MAC{}) {
			return bad("mac %q is not a unicast Ethernet address", req.MAC)
		}
		ep.MAC = m
	}
	return ep, nil
}

// Detach detaches an endpoint attached through the API. Detaching what is
// not attached succeeds, and still releases a persisted address.
func (e *Engine) Detach(ctx context.Context, req api.DetachRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var keys []epKey
	for k, d := range e.dynEps {
		switch {
		case req.ContainerID != "":
			if d.ContainerID == req.ContainerID && (req.Network == "" || req.Network == k.network) &&
				(req.IfName == "" || req.IfName == d.Endpoint.IfName) {
				keys = append(keys, k)
			}
		case k.network == req.Network && k.name == req.Name:
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
	if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
		return err
	}
	e.unlockedSaveEndpoints()
	return nil
}

// unlockedSaveEndpoints writes the attached endpoints to state_dir.
func (e *Engine) unlockedSaveEndpoints() {
	list := make([]dynEndpoint, 0, len(e.dynEps))
	for _, d := range e.dynEps {
		list = append(list, d)
	}
	e.writeState(endpointsFile, list)
}

// unlockedSaveNetworks writes the API networks to state_dir: the
// replicated state (versions and tombstones included) with gossip, else
// the local definitions.
func (e *Engine) unlockedSaveNetworks() {
	if e.cluster != nil {
		e.writeFile(networksFile, e.cluster.NetworkState())
		return
	}
	list := make([]config.Network, 0, len(e.dynNets))
	for _, n := range e.dynNets {
		list = append(list, n)
	}
	e.writeState(networksFile, list)
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
	if b, err := os.ReadFile(filepath.Join(dir, networksFile)); err == nil {
		if e.cluster != nil {
			if err := e.cluster.LoadNetworkState(b); err != nil {
				e.l.Warn("cannot restore networks", "error", err)
			}
		} else {
			var list []config.Network
			if err := json.Unmarshal(b, &list); err == nil {
				for _, n := range list {
					e.dynNets[n.Name] = n
				}
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, endpointsFile))
	if err != nil {
		return
	}
	var list []dynEndpoint
	if err := json.Unmarshal(b, &list); err != nil {
		e.l.Warn("cannot restore endpoints", "error", err)
		return
	}
	for _, d := range list {
		k := epKey{d.Endpoint.Network, d.Endpoint.Name}
		if d.Endpoint.Handoff {
			// Its TAP went with the old process; the runtime that took
			// it attaches again.
			e.alloc.Release(k.network, k.name)
			continue
		}
		if _, err := os.Stat(d.Endpoint.NetNS); err != nil {
			e.alloc.Release(k.network, k.name)
			e.l.Info("container gone while stopped; address released", "network", k.network, "endpoint", k.name)
			continue
		}
		e.dynEps[k] = d
	}
}
