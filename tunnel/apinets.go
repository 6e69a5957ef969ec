package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/gossip"
)

// Networks created through the API. With voting peers they live in the
// Raft log (e.blocks), beside the address blocks: a create or a removal is
// one entry, committed by a majority of the hosts, and the log refuses a
// definition that clashes with one of its networks, so two hosts racing
// cannot both win. Every host carries the log's networks, except where a
// local rule refuses one (see unapplied.go). The log's state is durable,
// so a restarted host knows them before it reaches a quorum. A host
// without voting peers keeps its API networks alone (e.dynNets, saved in
// state_dir), as it holds its address blocks alone.

// networkTimeout bounds how long a network create or removal waits for a
// quorum before it fails with the log's "no quorum" error.
const networkTimeout = 10 * time.Second

// unlockedAPINetworks returns the API-created networks: the log's, or
// this host's own without a log.
func (e *Engine) unlockedAPINetworks() []config.Network {
	var out []config.Network
	if e.blocks != nil {
		for _, n := range e.blocks.Networks() {
			out = append(out, n.Def)
		}
	} else {
		for _, n := range e.dynNets {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// vniRetries bounds how often a create picks a new VNI after the log
// refused the one it chose.
const vniRetries = 3

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
	if e.blocks == nil {
		// Without a log the network is this host's alone. Apply it
		// first: a definition this host cannot carry is not kept.
		eff := e.unlockedEffective()
		eff.Networks = append(eff.Networks, n)
		if _, err := e.unlockedApply(eff, true); err != nil {
			return api.Network{}, err
		}
		if f, ok := e.failed[n.Name]; ok && f.def == n {
			delete(e.failed, n.Name)
			e.unlockedReapply()
			return api.Network{}, fmt.Errorf("network %q cannot be applied on %s: %s", n.Name, e.cfg.Host.Name, f.err)
		}
		e.dynNets[n.Name] = n
	} else {
		// With a log the network exists once a majority has committed
		// it, and only then does any host carry it, this one included.
		// Carried while still proposed, it could share its VNI with a
		// network another host's create committed first, and mix the
		// two networks' traffic until the log refused this one.
		err := e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.CreateNetwork(ctx, n) })
		if e.stopped {
			return api.Network{}, errStopped
		}
		e.unlockedReapply()
		// A VNI this host chose itself can lose to another host's create
		// committed meanwhile: choose again from the log as it is now.
		// The name and subnet are the caller's, so their clashes stand.
		for try := 0; try < vniRetries && spec.VNI == 0 && errors.Is(err, consensus.ErrNetworkConflict); try++ {
			if n, err = e.unlockedCheckSpec(spec); err != nil {
				return api.Network{}, err
			}
			err = e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.CreateNetwork(ctx, n) })
			if e.stopped {
				return api.Network{}, errStopped
			}
			e.unlockedReapply()
		}
		switch {
		case errors.Is(err, consensus.ErrNetworkConflict):
			return api.Network{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		case err != nil:
			return api.Network{}, fmt.Errorf("network %q not created: %w", n.Name, err)
		}
	}
	e.unlockedSaveNetworks()
	e.l.Info("network created", "network", n.Name, "vni", n.VNI, "subnet", n.Subnet.String())
	return e.unlockedNetworkInfo(n), nil
}

// unlockedPropose runs propose, bounded by networkTimeout, with mu
// released: the API's reads and the routines that rebuild the data path's
// view must not wait for a quorum. mu is held again when it returns; the
// caller checks e.stopped before applying anything.
func (e *Engine) unlockedPropose(ctx context.Context, propose func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, networkTimeout)
	defer cancel()
	e.mu.Unlock()
	err := propose(ctx)
	e.mu.Lock()
	return err
}

// unlockedCheckSpec validates a network request against the networks
// known and fills in defaults.
func (e *Engine) unlockedCheckSpec(spec api.NetworkSpec) (config.Network, error) {
	bad := func(format string, args ...any) (config.Network, error) {
		return config.Network{}, fmt.Errorf("%w: %s", api.ErrInvalid, fmt.Sprintf(format, args...))
	}
	n, err := config.NewNetwork(spec.Name, spec.VNI, spec.Subnet, spec.Gateway, spec.MTU, spec.Encrypted,
		spec.Egress == nil || *spec.Egress)
	if err != nil {
		return bad("%v", err)
	}
	if n.Encrypted && e.enc == nil {
		return bad("encrypted networks need [host] private_key_file on this host")
	}
	if err := config.CheckPlainPeers(n.Encrypted, e.cfg.Host.BehindNAT, e.cfg.Peers); err != nil {
		return bad("%v", err)
	}
	// The networks this host carries, those of the log it does not, and
	// every host's config-file networks, as they announce them. The log
	// checks its own networks again when it applies the create.
	known := e.unlockedKnownNetworks()
	for _, o := range known {
		if err := config.NetworkClash(&n, &o); err != nil {
			if o.Name == n.Name && e.unapplied[o.Name].def == o {
				return config.Network{}, fmt.Errorf("%w: %v (not applied on this host)", api.ErrConflict, err)
			}
			return config.Network{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
	}
	var remote []gossip.HostNetwork
	if e.cluster != nil {
		for _, o := range e.cluster.HostNetworks() {
			if o.Host != e.cfg.Host.Name {
				remote = append(remote, o)
			}
		}
	}
	for _, o := range remote {
		on := config.Network{Name: o.Name, VNI: o.VNI, Subnet: o.Subnet}
		if err := config.NetworkClash(&n, &on); err != nil {
			return config.Network{}, fmt.Errorf("%w: %v (in the config file of host %s)", api.ErrConflict, err, o.Host)
		}
	}
	if n.VNI == 0 {
		n.VNI = config.MinVNI
		for slices.ContainsFunc(known, func(o config.Network) bool { return o.VNI == n.VNI }) ||
			slices.ContainsFunc(remote, func(o gossip.HostNetwork) bool { return o.VNI == n.VNI }) {
			n.VNI++
		}
	}
	return n, nil
}

// unlockedKnownNetworks returns the networks this host carries and those
// of the log it does not (e.unapplied): what a new network must not clash
// with, and what a publish or a service may name.
func (e *Engine) unlockedKnownNetworks() []config.Network {
	known := slices.Clone(e.cfg.Networks)
	for _, u := range e.unapplied {
		known = append(known, u.def)
	}
	return known
}

// RemoveNetwork removes an API-created network everywhere.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.isFileNetwork(name) {
		return fmt.Errorf("%w: network %q is defined in %s; remove it there", api.ErrInvalid, name, e.file.File)
	}
	_, unapplied := e.unapplied[name]
	found := slices.ContainsFunc(e.cfg.Networks, func(n config.Network) bool { return n.Name == name })
	if !found && !unapplied {
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
	if remote := e.unlockedRemoteEndpoints(name); len(remote) > 0 {
		return fmt.Errorf("%w: network %q has endpoints attached on other hosts: %v; detach them first", api.ErrConflict, name, remote)
	}
	if e.removing[name] {
		return fmt.Errorf("%w: network %q is being removed", api.ErrConflict, name)
	}
	if e.blocks != nil {
		// Attaches to the network are refused while the removal waits.
		if e.removing == nil {
			e.removing = make(map[string]bool)
		}
		e.removing[name] = true
		// The log checks the peers' names again when it applies the
		// removal: a name claimed just before it, not yet applied here,
		// refuses it there.
		among := make([]string, 0, len(e.cfg.Peers))
		for _, p := range e.cfg.Peers {
			among = append(among, p.Name)
		}
		err := e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.RemoveNetwork(ctx, name, among) })
		delete(e.removing, name)
		switch {
		case e.stopped:
			return errStopped
		case errors.Is(err, consensus.ErrUnknownNetwork):
			return fmt.Errorf("network %q: %w", name, api.ErrNotFound)
		case errors.Is(err, consensus.ErrNetworkConflict):
			return fmt.Errorf("%w: %v", api.ErrConflict, err)
		case err != nil:
			return fmt.Errorf("network %q not removed: %w", name, err)
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

// unlockedRemoteEndpoints returns the endpoints ("host/name", sorted)
// other hosts hold on network name: those their gossip records show, and
// with a log also the names it holds for configured peers, which stay
// while a peer is down or cut off and its records are gone from gossip.
// A peer releases a name when its endpoint goes, also one that went
// while the peer was stopped, once the peer is back.
func (e *Engine) unlockedRemoteEndpoints(name string) []string {
	seen := make(map[string]bool)
	if e.cluster != nil {
		for _, r := range e.cluster.Records() {
			if r.Network == name && r.Host != e.cfg.Host.Name {
				seen[r.Host+"/"+r.Name] = true
			}
		}
	}
	if e.blocks != nil {
		for _, c := range e.blocks.Claims() {
			if c.Network == name && c.Host != e.cfg.Host.Name && slices.ContainsFunc(e.cfg.Peers, func(p config.Peer) bool { return p.Name == c.Host }) {
				seen[c.Host+"/"+c.Name] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unlockedSaveNetworks writes this host's own API networks to state_dir.
// With a log there are none: the log keeps its state.
func (e *Engine) unlockedSaveNetworks() {
	if e.blocks != nil {
		return
	}
	list := make([]config.Network, 0, len(e.dynNets))
	for _, n := range e.dynNets {
		list = append(list, n)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	e.writeState(networksFile, list)
}

// routineAdopt carries the API networks found in state_dir at start (kept
// there by an earlier version, which gossiped them, or by this host before
// it had voting peers) into the log: each is proposed until the log takes
// or refuses it, then the file is removed. Hosts that adopt the same
// network race like any creates: the log keeps the first. Until the log
// takes a network, it is not carried.
func (e *Engine) routineAdopt() {
	for _, n := range e.adopt {
		for !slices.ContainsFunc(e.blocks.Networks(), func(o consensus.Network) bool { return o.Def.Name == n.Name }) {
			ctx, cancel := context.WithTimeout(context.Background(), networkTimeout)
			err := e.blocks.CreateNetwork(ctx, n)
			cancel()
			if err == nil || consensus.IsRefused(err) {
				e.l.Info("network of state_dir carried into the log", "network", n.Name, "error", err)
				break
			}
			select {
			case <-e.done:
				return
			case <-time.After(time.Second):
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if err := os.Remove(filepath.Join(e.file.Host.StateDir, networksFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.l.Warn("cannot remove adopted networks file", "error", err)
	}
}
