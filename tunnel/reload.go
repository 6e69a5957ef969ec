package tunnel

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
)

// apply makes the engine match a new config file: its networks, peers and
// endpoints plus those created through the API (see runtime.go). It runs at
// start-up (reload false) and on every reload. An endpoint of the file that
// cannot be attached is logged, listed with its error by Endpoints, and the
// rest applied, at start-up as on reload: a container that went away or a
// namespace that already holds the interface name cannot keep the others
// down. A config that cannot be applied at all leaves the
// running one in place.
func (e *Engine) apply(file *config.Config, reload bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errStopped
	}
	if old := e.file; old != nil && hostNeedsRestart(old.Host, file.Host) {
		return fmt.Errorf("%s: the [host] table changed; restart the daemon to apply it", file.File)
	}
	prev := e.file
	e.file = file
	epErrs, err := e.unlockedApply(e.unlockedEffective(), reload)
	if err != nil {
		e.file = prev
		return err
	}
	e.unlockedApplyDoors(file)
	e.failedCfg = make(map[epKey]error)
	for i, ep := range file.Endpoints {
		k := epKey{ep.Network, ep.Name}
		if err := epErrs[k]; err != nil {
			field := fmt.Sprintf("endpoint[%d]", i)
			if errors.Is(err, ErrNoPrivilege) {
				field += ".netns" // the namespace is what the daemon may not use
			}
			e.failedCfg[k] = file.Errorf(field, "%v", err)
			e.l.Error("cannot attach endpoint", "error", e.failedCfg[k], "network", ep.Network, "endpoint", ep.Name)
		}
	}
	for k, err := range epErrs {
		if d, ok := e.dynEps[k]; ok {
			// The daemon starts anyway; the endpoint is reported as
			// failed until detached. Its address is not this host's
			// (a conflict) or cannot be used: give it back.
			e.l.Error("cannot re-attach endpoint", "error", err, "network", k.network, "endpoint", k.name)
			delete(e.dynEps, k)
			e.alloc.Release(k.network, k.name)
			d.Failed = err.Error()
			e.failedEps[k] = d
			e.unlockedSaveEndpoint(k)
		}
	}
	return nil
}

// unlockedApply makes networks, peers and ports match the effective config
// cfg and publishes a new snapshot. It returns the endpoints that could not
// be attached, by key; the rest of cfg is applied regardless.
func (e *Engine) unlockedApply(cfg *config.Config, reload bool) (map[epKey]error, error) {
	deny, err := e.readEgressRules(cfg)
	if err != nil {
		return nil, err
	}
	underlay := e.underlayMTU(cfg)
	if reload && e.enc != nil {
		if err := e.enc.Reconfigure(cryptoConfig(cfg, underlay)); err != nil {
			return nil, fmt.Errorf("%s: cannot apply wireguard peers: %w", cfg.File, err)
		}
	}

	// Networks: keep those whose switching parameters are unchanged.
	nets := make(map[string]*network, len(cfg.Networks))
	skip := make(map[string]bool)
	for _, nc := range cfg.Networks {
		mtu := networkMTU(nc, underlay)
		if old := e.networks[nc.Name]; old != nil && old.cfg == nc && old.mtu == mtu {
			nets[nc.Name] = old
			continue
		}
		n, err := e.openNetwork(nc, mtu, cfg)
		if err != nil && !e.isFileNetwork(nc.Name) {
			// An API network must not keep the rest from applying, at
			// start-up or later: leave it out until its definition changes.
			e.failed[nc.Name] = failedNet{def: nc, err: err.Error()}
			skip[nc.Name] = true
			continue
		}
		if err != nil {
			for _, m := range nets {
				if e.networks[m.cfg.Name] != m {
					e.unlockedClosePort(m.gw)
				}
			}
			return nil, err
		}
		nets[nc.Name] = n
	}
	if len(skip) > 0 {
		cfg = withoutNetworks(cfg, skip)
		e.unlockedEffective() // notes and counts the networks left out
	}
	// Peers: keep those whose address is unchanged.
	peers := make(map[string]*peer, len(cfg.Peers))
	for _, pc := range cfg.Peers {
		if old := e.peers[pc.Name]; old != nil && old.addr == pc.AddrPort() && old.key == pc.PublicKey && old.roaming == pc.Roaming() {
			peers[pc.Name] = old
			continue
		}
		peers[pc.Name] = &peer{name: pc.Name, addr: pc.AddrPort(), key: pc.PublicKey, roaming: pc.Roaming()}
	}

	// Ports: close those that go or change before opening new ones, since
	// a changed endpoint reuses its interface name in its namespace.
	want := make(map[epKey]*config.Endpoint, len(cfg.Endpoints))
	for i := range cfg.Endpoints {
		ep := &cfg.Endpoints[i]
		want[epKey{ep.Network, ep.Name}] = ep
	}
	for k, p := range e.ports {
		ep, ok := want[k]
		if ok && nets[k.network] == p.net && ep.Equal(p.cfg) {
			continue
		}
		e.unlockedClosePort(p)
		delete(e.ports, k)
		if !ok {
			e.unlockedReleaseName(k)
		}
		if !ok || ep.Address != p.cfg.Address {
			// Gone, or asking for another address: give the old one back.
			if err := e.alloc.Release(k.network, k.name); err != nil {
				e.l.Warn("cannot release address", "error", err, "network", k.network, "endpoint", k.name)
			}
		}
	}
	epErrs := make(map[epKey]error)
	for _, ep := range cfg.Endpoints {
		k := epKey{ep.Network, ep.Name}
		if e.ports[k] != nil {
			continue
		}
		n := nets[ep.Network]
		// The address first: a refusal that this host can decide alone
		// (an address in another host's block) is given as such, not as
		// a claim the log could not commit.
		addr, err := e.allocate(n.cfg, ep)
		if err != nil {
			epErrs[k] = err
			continue
		}
		if err := e.unlockedClaimName(ep); err != nil {
			epErrs[k] = err
			if rerr := e.alloc.Release(k.network, k.name); rerr != nil {
				e.l.Warn("cannot release address", "error", rerr, "network", k.network, "endpoint", k.name)
			}
			continue
		}
		err = e.unlockedCheckInUse(n, ep.Name, endpointMAC(ep, addr), addr)
		var p *port
		if err == nil {
			p, err = e.openPort(ep, n, addr)
		}
		if err != nil {
			epErrs[k] = err
			e.unlockedReleaseName(k)
			continue
		}
		e.ports[k] = p
		e.l.Info("endpoint attached", "network", ep.Network, "endpoint", ep.Name,
			"address", p.addr.String(), "mac", p.mac.String(), "netns", ep.NetNS)
	}

	// Retire networks and peers that went away or were replaced.
	for name, n := range e.networks {
		if nets[name] != n {
			n.removed.Store(true)
			e.unlockedClosePort(n.gw)
		}
	}
	for name, r := range e.peers {
		if peers[name] != r {
			r.removed.Store(true)
			for _, n := range nets {
				n.fdb.removePeer(r)
			}
		}
	}
	e.networks, e.peers, e.cfg = nets, peers, cfg
	e.unlockedSetEgress(deny)
	if e.cluster != nil {
		e.cluster.SetPeers(gossipPeers(cfg))
		e.cluster.SetViaTunnel(viaTunnel(cfg))
		e.unlockedReloadOutside(cfg)
		// Other hosts check API networks against this host's file.
		fileNets := make([]gossip.HostNetwork, 0, len(e.file.Networks))
		for _, n := range e.file.Networks {
			fileNets = append(fileNets, gossip.HostNetwork{Name: n.Name, VNI: n.VNI, Subnet: n.Subnet})
		}
		e.cluster.SetLocalNetworks(fileNets)
	}
	for _, n := range nets {
		if n.dns != nil {
			n.dns.SetIsolated(otherNetworks(cfg, n.cfg.Name))
		}
	}
	e.sw.publish(e.unlockedBuildSnapshot())
	e.unlockedSyncPublishes()
	e.unlockedPublish()
	if reload {
		for _, p := range e.ports {
			e.startPort(p)
		}
		for _, n := range e.networks {
			e.startPort(n.gw)
		}
	}
	return epErrs, nil
}

// openNetwork opens the gateway and DNS of a new network.
func (e *Engine) openNetwork(nc config.Network, mtu int, cfg *config.Config) (*network, error) {
	n := &network{cfg: nc, mtu: mtu, fdb: newFDB(e.opts.FDBMax)}
	gw, err := e.openGateway(n)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", nc.Name, err)
	}
	n.gw = gw
	if err := e.startDNS(n, cfg); err != nil {
		e.unlockedClosePort(gw)
		return nil, fmt.Errorf("network %s: %w", nc.Name, err)
	}
	return n, nil
}

// withoutNetworks returns a copy of cfg without the networks named in skip
// and their endpoints.
func withoutNetworks(cfg *config.Config, skip map[string]bool) *config.Config {
	c := *cfg
	c.Networks = slices.DeleteFunc(slices.Clone(cfg.Networks), func(n config.Network) bool { return skip[n.Name] })
	c.Endpoints = slices.DeleteFunc(slices.Clone(cfg.Endpoints), func(ep config.Endpoint) bool { return skip[ep.Network] })
	return &c
}

// hostNeedsRestart reports whether the [host] table changed in a way a
// reload cannot apply. Upstream DNS servers are excluded: they follow the
// host's resolv.conf, which may change under a running daemon. So is the
// egress deny list, which every apply installs.
func hostNeedsRestart(a, b config.Host) bool {
	a.DNSUpstream, b.DNSUpstream = nil, nil
	a.EgressDeny, b.EgressDeny = nil, nil
	return !a.Equal(b)
}
