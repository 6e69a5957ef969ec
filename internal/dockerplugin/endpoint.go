package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// createEndpoint records the address and MAC Docker's IPAM request gave
// the endpoint; the TAP is made at Join, when the container's name is
// known.
func (p *Plugin) createEndpoint(_ context.Context, body []byte) (any, error) {
	var req createEndpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	n, err := p.network(req.NetworkID)
	if err != nil {
		return nil, err
	}
	if req.EndpointID == "" {
		return nil, errors.New("CreateEndpoint without an EndpointID")
	}
	if req.Interface == nil || req.Interface.Address == "" {
		return nil, errors.New("the endpoint has no IPv4 address: create the network with --ipam-driver vxwire")
	}
	if req.Interface.AddressIPv6 != "" {
		return nil, errors.New("IPv6 addresses: vxwire networks carry IPv4 only")
	}
	addr, err := netip.ParsePrefix(req.Interface.Address)
	if err != nil || !n.subnet.Contains(addr.Addr()) {
		return nil, fmt.Errorf("address %q is not in subnet %s", req.Interface.Address, n.subnet)
	}
	if m := req.Interface.MacAddress; m != "" {
		if _, err := config.ParseMAC(m); err != nil {
			return nil, fmt.Errorf("--mac-address: %v", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.eps[req.EndpointID]; dup {
		return nil, fmt.Errorf("endpoint %.12s exists", req.EndpointID)
	}
	p.eps[req.EndpointID] = &dockerEp{net: n, addr: addr, mac: req.Interface.MacAddress,
		handoff: handoffName(req.EndpointID)}
	p.unlockedSave()
	// The interface was given, so the answer must not carry one.
	return createEndpointResponse{}, nil
}

// handoffName names an endpoint's TAP in the daemon's namespace until
// Docker moves it into the container and renames it ethN.
func handoffName(endpointID string) string {
	id := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'a' && r <= 'f' {
			return r
		}
		return -1
	}, strings.ToLower(endpointID))
	if len(id) > config.MaxIfNameLen-3 {
		id = id[:config.MaxIfNameLen-3]
	}
	return "vxw" + id
}

// join attaches the endpoint under its container's name: the daemon makes
// its TAP in its own namespace, and Docker moves it into the container,
// names it eth0, eth1, … and sets the address, MAC and default route.
func (p *Plugin) join(ctx context.Context, body []byte) (any, error) {
	var req joinRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	p.mu.Lock()
	ep := p.eps[req.EndpointID]
	p.mu.Unlock()
	if ep == nil || ep.net.id != req.NetworkID {
		return nil, fmt.Errorf("endpoint %.12s of network %.12s was not created by vxwire", req.EndpointID, req.NetworkID)
	}
	docker := p.docker(ctx)
	network, err := p.ensureNetwork(ctx, docker, ep.net)
	if err != nil {
		return nil, err
	}
	name := containerName(ctx, docker, req)
	p.mu.Lock()
	key := p.reserved[ep.addr.Addr()]
	p.mu.Unlock()
	attached, err := p.rt.AttachReserved(ctx, api.AttachRequest{
		Network: network, Name: name, Address: ep.addr.Addr().String(), MAC: ep.mac,
		IfName: ep.handoff, Handoff: true, ContainerID: req.EndpointID,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("cannot attach %q to network %q: %w", name, network, err)
	}
	p.mu.Lock()
	delete(p.reserved, ep.addr.Addr())
	ep.name = attached.Name
	p.unlockedSave()
	p.mu.Unlock()
	go p.setAliasesLater(docker, network, attached.Name)
	resp := joinResponse{InterfaceName: interfaceName{SrcName: ep.handoff, DstPrefix: "eth"}}
	if !ep.net.internal {
		resp.Gateway = attached.Gateway
	}
	return resp, nil
}

// containerName is the endpoint's DNS name: the container's name as
// dockerd lists it, else "c" and the endpoint id's first 11 characters.
func containerName(ctx context.Context, docker Docker, req joinRequest) string {
	if dn, err := docker.Network(ctx, req.NetworkID); err == nil {
		if name := strings.ToLower(dn.Endpoints[req.EndpointID]); config.CheckLabel(name) == nil {
			return name
		}
	}
	id := req.EndpointID
	if len(id) > 11 {
		id = id[:11]
	}
	return "c" + strings.ToLower(id)
}

// setAliasesLater gives the endpoint the container's --network-alias
// names once dockerd can tell them: it holds the container's lock until
// the start or connect that called Join is done.
func (p *Plugin) setAliasesLater(docker Docker, network, name string) {
	defer p.rep.Recover(RecoveredCall, nil)
	ctx, cancel := context.WithTimeout(context.Background(), aliasWait)
	defer cancel()
	aliases, err := containerAliases(ctx, docker, name, network)
	if err == nil && len(aliases) > 0 {
		err = p.rt.SetAliases(ctx, network, name, aliases)
	}
	if err != nil {
		p.l.Info("cannot apply the container's network aliases", "error", err, "network", network, "endpoint", name)
	}
}

// aliasWait bounds the wait for dockerd's view of a container.
const aliasWait = 30 * time.Second

// containerAliases returns the container's --network-alias names on
// network that are DNS labels other than its name; Docker's own alias,
// the short container id, is among them. A dockerd that cannot say gives
// none: the container still attaches.
func containerAliases(ctx context.Context, docker Docker, name, network string) ([]string, error) {
	list, err := docker.Aliases(ctx, name, network)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range list {
		a = strings.ToLower(a)
		if a != name && config.CheckLabel(a) == nil && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// leave detaches the endpoint: its TAP goes, and every host forgets its
// record.
func (p *Plugin) leave(ctx context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return struct{}{}, p.detach(ctx, req.EndpointID)
}

func (p *Plugin) deleteEndpoint(ctx context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	err := p.detach(ctx, req.EndpointID)
	if uerr := p.unpublish(ctx, req.EndpointID); err == nil {
		err = uerr
	}
	p.mu.Lock()
	delete(p.eps, req.EndpointID)
	p.unlockedSave()
	p.mu.Unlock()
	return struct{}{}, err
}

// detach detaches what Join attached; detaching twice succeeds. An
// endpoint this process does not know may have been joined before a
// restart that kept its interface: it is detached by its id alone.
func (p *Plugin) detach(ctx context.Context, endpointID string) error {
	p.mu.Lock()
	ep := p.eps[endpointID]
	var network string
	if ep != nil {
		network = ep.net.name
	}
	p.mu.Unlock()
	if ep != nil && network == "" {
		return nil
	}
	return p.rt.Detach(ctx, api.DetachRequest{Network: network, ContainerID: endpointID})
}

func (p *Plugin) operInfo(_ context.Context, body []byte) (any, error) {
	var req endpointRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return operInfoResponse{Value: map[string]any{}}, nil
}
