// Package apitest provides an in-memory api.Backend for tests of the API
// server, its client and the command-line client.
package apitest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

var _ api.Backend = (*Backend)(nil)

// Backend is an in-memory api.Backend. Networks and endpoints live in
// maps; the status is whatever SetStatus stored. It is safe for
// concurrent use; its zero value is not, use New.
type Backend struct {
	mu        sync.Mutex
	st        api.Status
	networks  map[string]api.Network
	endpoints []api.Endpoint
	remote    []api.Endpoint
	fail      error
	bounds    map[string]time.Duration
}

// New returns an empty Backend.
func New() *Backend {
	return &Backend{networks: map[string]api.Network{}, bounds: map[string]time.Duration{}}
}

// SetStatus sets what Status returns.
func (b *Backend) SetStatus(st api.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st = st
}

// Fail makes every Runtime method that changes state, and Network,
// return err (nil restores normal behaviour).
func (b *Backend) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = err
}

// AddConfigNetwork adds a network as if the config file declared it.
func (b *Backend) AddConfigNetwork(n api.Network) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n.Source = "config"
	b.networks[n.Name] = n
}

// Bound returns how much time the context of the last call of method
// had left when the call began, and false if it had no deadline or the
// method was not called.
func (b *Backend) Bound(method string) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.bounds[method]
	return d, ok
}

func (b *Backend) unlockedEnter(ctx context.Context, method string) error {
	if dl, ok := ctx.Deadline(); ok {
		b.bounds[method] = time.Until(dl)
	}
	return b.fail
}

// Status returns what SetStatus stored.
func (b *Backend) Status() api.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// Networks lists the networks sorted by name, with their endpoint counts.
func (b *Backend) Networks() []api.Network {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ns []api.Network
	for _, n := range b.networks {
		ns = append(ns, b.unlockedCounted(n))
	}
	slices.SortFunc(ns, func(x, y api.Network) int { return strings.Compare(x.Name, y.Name) })
	return ns
}

// AddRemote adds an endpoint as if another host announced it by gossip.
func (b *Backend) AddRemote(ep api.Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ep.Source = "gossip"
	b.remote = append(b.remote, ep)
}

// AllEndpoints lists the local endpoints, then the remote ones.
func (b *Backend) AllEndpoints() []api.Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(slices.Clone(b.endpoints), b.remote...)
}

// Network describes one network.
func (b *Backend) Network(name string) (api.Network, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return api.Network{}, b.fail
	}
	n, ok := b.networks[name]
	if !ok {
		return api.Network{}, fmt.Errorf("network %q: %w", name, api.ErrNotFound)
	}
	n = b.unlockedCounted(n)
	for _, ep := range append(slices.Clone(b.endpoints), b.remote...) {
		if ep.Network == name {
			n.Members = append(n.Members, ep)
		}
	}
	return n, nil
}

func (b *Backend) unlockedCounted(n api.Network) api.Network {
	n.Endpoints = 0
	for _, ep := range b.endpoints {
		if ep.Network == n.Name {
			n.Endpoints++
		}
	}
	return n
}

// CreateNetwork creates a network, filling defaults as the daemon does.
func (b *Backend) CreateNetwork(ctx context.Context, spec api.NetworkSpec) (api.Network, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unlockedEnter(ctx, "CreateNetwork"); err != nil {
		return api.Network{}, err
	}
	if _, ok := b.networks[spec.Name]; ok {
		return api.Network{}, fmt.Errorf("network %q already exists: %w", spec.Name, api.ErrConflict)
	}
	// The daemon's rules and defaults.
	cn, err := config.NewNetwork(spec.Name, spec.VNI, spec.Subnet, spec.Gateway, spec.MTU, spec.Encrypted,
		spec.Egress == nil || *spec.Egress)
	if err != nil {
		return api.Network{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	n := api.Network{Name: cn.Name, VNI: cn.VNI, Subnet: cn.Subnet.String(), Gateway: cn.Gateway.String(),
		MTU: cn.MTU, Encrypted: cn.Encrypted, Egress: cn.Egress, Source: "api"}
	for _, o := range b.networks {
		sub, _ := netip.ParsePrefix(o.Subnet)
		if err := config.NetworkClash(&cn, &config.Network{Name: o.Name, VNI: o.VNI, Subnet: sub}); err != nil {
			return api.Network{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
	}
	if n.VNI == 0 {
		for n.VNI = config.MinVNI; b.unlockedVNIUsed(n.VNI); n.VNI++ {
		}
	}
	if n.MTU == 0 {
		n.MTU = 1450
	}
	b.networks[n.Name] = n
	return n, nil
}

func (b *Backend) unlockedVNIUsed(vni uint32) bool {
	for _, n := range b.networks {
		if n.VNI == vni {
			return true
		}
	}
	return false
}

// RemoveNetwork removes an API-created network without endpoints.
func (b *Backend) RemoveNetwork(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unlockedEnter(ctx, "RemoveNetwork"); err != nil {
		return err
	}
	n, ok := b.networks[name]
	switch {
	case !ok:
		return fmt.Errorf("network %q: %w", name, api.ErrNotFound)
	case n.Source == "config":
		return fmt.Errorf("%w: network %q comes from the config file", api.ErrInvalid, name)
	case b.unlockedCounted(n).Endpoints > 0:
		return fmt.Errorf("network %q has endpoints attached: %w", name, api.ErrConflict)
	}
	delete(b.networks, name)
	return nil
}

// Endpoints lists the endpoints in attach order.
func (b *Backend) Endpoints() []api.Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.endpoints)
}

// Attach attaches an endpoint, allocating the next free address of the
// subnet when none is asked for.
func (b *Backend) Attach(ctx context.Context, req api.AttachRequest) (api.Endpoint, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unlockedEnter(ctx, "Attach"); err != nil {
		return api.Endpoint{}, err
	}
	n, ok := b.networks[req.Network]
	if !ok {
		return api.Endpoint{}, fmt.Errorf("network %q: %w", req.Network, api.ErrNotFound)
	}
	for _, ep := range b.endpoints {
		if ep.Network == req.Network && ep.Name == req.Name {
			return api.Endpoint{}, fmt.Errorf("name %q is taken on network %q: %w", req.Name, req.Network, api.ErrConflict)
		}
	}
	for _, ep := range b.remote {
		claim := config.NameHolder{Network: req.Network, Name: req.Name, Host: "this host"}
		if err := config.CheckNameClaim(claim, config.NameHolder{Network: ep.Network, Name: ep.Name, Host: ep.Host}); err != nil {
			return api.Endpoint{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
	}
	ce, err := config.NewEndpoint(req.Network, req.Name, req.Aliases, req.IfName, req.Address, req.MAC)
	if err != nil {
		return api.Endpoint{}, fmt.Errorf("%w: endpoint %v", api.ErrInvalid, err)
	}
	pfx := netip.MustParsePrefix(n.Subnet)
	addr, err := b.unlockedAddress(n, pfx, ce.Address)
	if err != nil {
		return api.Endpoint{}, err
	}
	ep := api.Endpoint{Network: req.Network, Name: req.Name, NetNS: req.NetNS, IfName: ce.IfName,
		Address: netip.PrefixFrom(addr, pfx.Bits()).String(), Gateway: n.Gateway, MTU: n.MTU,
		Aliases: req.Aliases, ContainerID: req.ContainerID, Source: "api",
		DNS: api.DNS{Nameservers: []string{n.Gateway}, Search: []string{n.Name}}}
	if ce.MAC != nil {
		ep.MAC = ce.MAC.String()
	} else {
		a := addr.As4()
		ep.MAC = net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}.String()
	}
	// As the daemon: the first endpoint of a namespace owns the default
	// route and answers DNS for every network the namespace is on.
	ep.DefaultRoute = true
	for _, o := range b.endpoints {
		if o.NetNS == ep.NetNS {
			ep.DefaultRoute = false
			ep.DNS.Nameservers = o.DNS.Nameservers
			ep.DNS.Search = append(slices.Clone(o.DNS.Search), n.Name)
		}
	}
	b.endpoints = append(b.endpoints, ep)
	return ep, nil
}

func (b *Backend) unlockedAddress(n api.Network, pfx netip.Prefix, want netip.Addr) (netip.Addr, error) {
	used := map[string]bool{n.Gateway: true}
	for _, ep := range b.endpoints {
		if ep.Network == n.Name {
			used[netip.MustParsePrefix(ep.Address).Addr().String()] = true
		}
	}
	if a := want; a.IsValid() {
		cn := config.Network{Name: n.Name, Subnet: pfx, Gateway: netip.MustParseAddr(n.Gateway)}
		if err := config.CheckEndpointAddr(a, &cn); err != nil {
			return a, fmt.Errorf("%w: address: %v", api.ErrInvalid, err)
		}
		switch {
		case used[a.String()]:
			return a, fmt.Errorf("address %s is in use: %w", a, api.ErrConflict)
		}
		return a, nil
	}
	for a := pfx.Masked().Addr().Next(); pfx.Contains(a); a = a.Next() {
		if !used[a.String()] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("network %q has no free address: %w", n.Name, api.ErrConflict)
}

// Detach removes the endpoints that req names; none is not an error.
func (b *Backend) Detach(ctx context.Context, req api.DetachRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.unlockedEnter(ctx, "Detach"); err != nil {
		return err
	}
	b.endpoints = slices.DeleteFunc(b.endpoints, func(ep api.Endpoint) bool {
		if req.ContainerID != "" {
			return ep.ContainerID == req.ContainerID &&
				(req.Network == "" || req.Network == ep.Network) && (req.IfName == "" || req.IfName == ep.IfName)
		}
		return ep.Network == req.Network && ep.Name == req.Name
	})
	return nil
}
