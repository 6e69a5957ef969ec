package dockerplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// createNetwork records a Docker network. Docker does not pass the name,
// so the vxwire network is created or joined once dockerd can name it:
// right after this call returns (in the background) and at the latest
// when the first address is requested.
func (p *Plugin) createNetwork(ctx context.Context, body []byte) (any, error) {
	var req createNetworkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	if req.NetworkID == "" {
		return nil, errors.New("CreateNetwork without a NetworkID")
	}
	n := &dockerNet{id: req.NetworkID}
	if err := parseOptions(req.Options, n); err != nil {
		return nil, err
	}
	if len(req.IPv6Data) > 0 {
		return nil, errors.New("--ipv6: vxwire networks carry IPv4 only")
	}
	if len(req.IPv4Data) != 1 {
		return nil, fmt.Errorf("a vxwire network has exactly one IPv4 subnet; got %d", len(req.IPv4Data))
	}
	d := req.IPv4Data[0]
	if d.AddressSpace != Name {
		return nil, errors.New("use --ipam-driver vxwire: another IPAM driver allocates addresses on each host alone, " +
			"so containers on two hosts would get the same address on one overlay network")
	}
	var err error
	if n.subnet, err = netip.ParsePrefix(d.Pool); err != nil {
		return nil, fmt.Errorf("subnet %q: %v", d.Pool, err)
	}
	if gw, err := netip.ParsePrefix(d.Gateway); err == nil {
		n.gateway = gw.Addr()
	}
	if len(d.AuxAddresses) > 0 {
		return nil, errors.New("--aux-address is not supported by the vxwire driver")
	}
	for _, o := range p.rt.Networks() {
		if sub, err := netip.ParsePrefix(o.Subnet); err == nil && sub != n.subnet && sub.Overlaps(n.subnet) {
			return nil, fmt.Errorf("subnet %s overlaps %s of vxwire network %q", n.subnet, sub, o.Name)
		}
	}
	p.mu.Lock()
	p.nets[n.id] = n
	p.unlockedSave()
	p.mu.Unlock()
	docker := p.docker(ctx)
	go p.ensureLater(docker, n)
	return struct{}{}, nil
}

// ensureLater creates or joins n's vxwire network as soon as dockerd
// lists it, so that other hosts see the network before a container
// starts here. It tries again while dockerd does not name the network
// yet or the overlay cannot commit it (no quorum yet: the other hosts are
// still starting), for ensureFor at most; a refusal (a clash, an invalid
// definition) ends it at once. Failures are logged; the first address
// request repeats them to the user.
func (p *Plugin) ensureLater(docker Docker, n *dockerNet) {
	defer p.rep.Recover(RecoveredCall, nil)
	deadline := time.Now().Add(ensureFor)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		_, err = p.ensureNetwork(ctx, docker, n)
		cancel()
		if err == nil || errors.Is(err, api.ErrConflict) || errors.Is(err, api.ErrInvalid) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		p.l.Warn("cannot create vxwire network for docker", "error", err, "docker_network", n.id)
	}
}

// ensureFor bounds how long ensureLater keeps trying.
const ensureFor = 60 * time.Second

// errUnnamed means dockerd does not list the network (yet).
var errUnnamed = errors.New("dockerd does not know the network's name yet")

// ensureNetwork returns the vxwire network of n, creating it under the
// name dockerd gives n if it does not exist. An existing network of that
// name must have n's subnet and gateway.
func (p *Plugin) ensureNetwork(ctx context.Context, docker Docker, n *dockerNet) (string, error) {
	p.mu.Lock()
	name := n.name
	p.mu.Unlock()
	if name != "" && p.exists(name) {
		return name, nil
	}
	if name == "" { // else removed meanwhile (docker network rm on another host): create it again
		dn, err := docker.Network(ctx, n.id)
		if err != nil || dn.Name == "" {
			return "", fmt.Errorf("%w: %v", errUnnamed, err)
		}
		name = dn.Name
	}
	spec := api.NetworkSpec{Name: name, Subnet: n.subnet.String(), MTU: n.mtu, Encrypted: n.encrypted}
	if n.gateway.IsValid() {
		spec.Gateway = n.gateway.String()
	}
	egress := !n.internal
	spec.Egress = &egress
	if err := p.matchExisting(name, n); err != nil {
		return "", err
	}
	if !p.exists(name) {
		if _, err := p.rt.CreateNetwork(ctx, spec); err != nil {
			// Another host's create (or this host's other request)
			// racing ours won: its network reaches this host's view of
			// the log a moment later.
			if !p.waitExists(ctx, name, raceWait) {
				return "", fmt.Errorf("cannot create vxwire network %q: %w", name, err)
			}
			if err := p.matchExisting(name, n); err != nil {
				return "", err
			}
		}
	}
	p.mu.Lock()
	if n.name != name {
		n.name = name
		p.unlockedSave()
	}
	p.mu.Unlock()
	return name, nil
}

// raceWait bounds how long a create that lost a race waits for the
// winner's network to appear here.
const raceWait = 3 * time.Second

// waitExists reports whether the runtime has a network called name within
// d (or until ctx ends).
func (p *Plugin) waitExists(ctx context.Context, name string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if p.exists(name) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exists reports whether the runtime has a network called name.
func (p *Plugin) exists(name string) bool {
	for _, o := range p.rt.Networks() {
		if o.Name == name {
			return true
		}
	}
	return false
}

// matchExisting refuses a Docker network whose subnet or gateway differs
// from the vxwire network of the same name.
func (p *Plugin) matchExisting(name string, n *dockerNet) error {
	for _, o := range p.rt.Networks() {
		if o.Name != name {
			continue
		}
		if o.Subnet != n.subnet.String() {
			return fmt.Errorf("vxwire network %q has subnet %s; docker network create asked for %s", name, o.Subnet, n.subnet)
		}
		if n.gateway.IsValid() && o.Gateway != n.gateway.String() {
			return fmt.Errorf("vxwire network %q has gateway %s; docker network create asked for %s", name, o.Gateway, n.gateway)
		}
	}
	return nil
}

// deleteNetwork forgets a Docker network and removes its vxwire network
// when nothing uses it any more; while another host's containers still
// use it, it stays and Docker's removal succeeds.
func (p *Plugin) deleteNetwork(ctx context.Context, body []byte) (any, error) {
	var req networkRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	p.mu.Lock()
	n := p.nets[req.NetworkID]
	delete(p.nets, req.NetworkID)
	p.unlockedSave()
	p.mu.Unlock()
	if n == nil || n.name == "" {
		return struct{}{}, nil
	}
	if err := p.rt.RemoveNetwork(ctx, n.name); err != nil && !errors.Is(err, api.ErrNotFound) {
		p.l.Info("vxwire network kept after docker network rm", "network", n.name, "error", err)
		if errors.Is(err, api.ErrConflict) {
			go p.removeLater(n.name)
		}
	}
	return struct{}{}, nil
}

// removeFor bounds how long removeLater keeps trying, and removeEvery is
// its pause between tries.
const (
	removeFor   = 30 * time.Second
	removeEvery = 500 * time.Millisecond
)

// removeLater removes the vxwire network name once no host has endpoints
// on it, for removeFor at most, unless a Docker network of that name is
// made here again meanwhile. When two hosts run docker network rm at
// once, each may still see the other's last container, which the other
// has just removed: without this, both kept the network for good.
func (p *Plugin) removeLater(name string) {
	defer p.rep.Recover(RecoveredCall, nil)
	deadline := time.Now().Add(removeFor)
	for time.Now().Before(deadline) {
		time.Sleep(removeEvery)
		if p.usedHere(name) {
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := p.rt.RemoveNetwork(ctx, name)
		cancel()
		switch {
		case err == nil:
			p.l.Info("vxwire network removed once no host used it", "network", name)
			return
		case !errors.Is(err, api.ErrConflict):
			return // gone already, or not ours to remove
		}
	}
}

// usedHere reports whether a Docker network of this host is the vxwire
// network name.
func (p *Plugin) usedHere(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.nets {
		if n.name == name {
			return true
		}
	}
	return false
}

// network returns the Docker network id, or an error naming it.
func (p *Plugin) network(id string) (*dockerNet, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := p.nets[id]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("network %.12s is not a vxwire network here (was the daemon's state_dir emptied? remove and create it again)", id)
}
