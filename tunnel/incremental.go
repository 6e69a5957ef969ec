package tunnel

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/config"
)

// Attaching or detaching one API endpoint changes one port, so it does not
// re-apply the whole effective config (reload.go): it makes the one port,
// with the same checks and in the same order as unlockedApply does for a
// new endpoint (address, cluster-wide name claim, in-use check), and
// derives the next snapshot, the published-port table and the effective
// config from the current ones, copying only the maps of the port's
// network that change. That is what keeps the last attach on a host of
// thousands of endpoints as fast as the first. The old snapshot is
// never written: the switch may be reading it.
//
// The incremental path covers the plain case; anything it cannot derive
// exactly falls back to the full apply: a namespace with another network
// (its resolver's shared names), publishes or services (their listeners
// and VIPs follow the endpoints), a host or handoff endpoint, a remote
// record at the port's address, or an effective config that is not the
// one the incremental path expects.

// unlockedCanIncrement reports whether the port of ep on network n can be
// added or removed incrementally. mu must be held.
func (e *Engine) unlockedCanIncrement(ep config.Endpoint, n *network, addr netip.Addr) bool {
	if n == nil || e.networks[ep.Network] != n || ep.IsHost() || ep.Handoff || e.sw.snap.Load() == nil {
		return false
	}
	if e.sw.snap.Load().byVNI[n.cfg.VNI] == nil || len(e.file.Publishes) > 0 || len(e.file.Services) > 0 ||
		len(e.unlockedAPIPublishes()) > 0 || len(e.unlockedAPIServices()) > 0 {
		return false
	}
	// The file's endpoints lead the effective config, then the API's.
	if nf := len(e.file.Endpoints); nf > len(e.cfg.Endpoints) || nf > 0 && !e.file.Endpoints[nf-1].Equal(e.cfg.Endpoints[nf-1]) {
		return false
	}
	ns := netnsID(ep.NetNS)
	for k, p := range e.ports {
		if k != (epKey{ep.Network, ep.Name}) && !p.gateway && p.ns == ns && ns != (nsID{}) && !p.closed.Load() {
			return false // another network in this namespace
		}
	}
	if addr.IsValid() {
		for _, r := range e.unlockedRecords() {
			if r.Network == ep.Network && r.IP == addr {
				return false
			}
		}
	}
	return true
}

// unlockedAttachOne attaches ep, an API endpoint on an applied network
// that has no port yet, without a full apply. handled false means it
// did nothing and the caller must apply in full. mu must be held.
func (e *Engine) unlockedAttachOne(ep config.Endpoint) (handled bool, err error) {
	k := epKey{ep.Network, ep.Name}
	n := e.networks[ep.Network]
	if e.ports[k] != nil || !e.unlockedCanIncrement(ep, n, ep.Address) {
		return false, nil
	}
	addr, err := e.allocate(n.cfg, ep)
	if err != nil {
		return true, err
	}
	if !e.unlockedCanIncrement(ep, n, addr) {
		// A remote record holds the address: the full apply reports it.
		return false, nil
	}
	if err := e.unlockedClaimName(ep); err != nil {
		if rerr := e.alloc.Release(k.network, k.name); rerr != nil {
			e.l.Warn("cannot release address", "error", rerr, "network", k.network, "endpoint", k.name)
		}
		return true, err
	}
	err = e.unlockedCheckInUse(n, ep.Name, endpointMAC(ep, addr), addr)
	var p *port
	if err == nil {
		p, err = e.openPort(ep, n, addr)
	}
	if err != nil {
		e.unlockedReleaseName(k)
		return true, err
	}
	e.ports[k] = p
	e.l.Info("endpoint attached", "network", ep.Network, "endpoint", ep.Name,
		"address", p.addr.String(), "mac", p.mac.String(), "netns", ep.NetNS)
	e.unlockedSetCfgEndpoint(ep, true)
	e.unlockedPublishPort(p, true)
	e.startPort(p)
	return true, nil
}

// unlockedDetachOne detaches the API endpoint k, whose record is gone
// from dynEps already, without a full apply. handled false means it did
// nothing. mu must be held.
func (e *Engine) unlockedDetachOne(k epKey) bool {
	p := e.ports[k]
	if p == nil || p.gateway || !e.unlockedCanIncrement(p.cfg, p.net, p.addr.Addr()) {
		return false
	}
	e.unlockedClosePort(p)
	delete(e.ports, k)
	e.unlockedReleaseName(k)
	if err := e.alloc.Release(k.network, k.name); err != nil {
		e.l.Warn("cannot release address", "error", err, "network", k.network, "endpoint", k.name)
	}
	e.unlockedSetCfgEndpoint(p.cfg, false)
	e.unlockedPublishPort(p, false)
	return true
}

// unlockedPublishPort hands the switch, the published-port listeners and
// the overlay the state with p added (add) or removed. mu must be held.
func (e *Engine) unlockedPublishPort(p *port, add bool) {
	e.sw.publish(snapshotWithPort(e.sw.snap.Load(), p, add))
	if e.pub != nil && !e.stopped {
		if t := e.pub.table.Load(); t != nil {
			e.pub.table.Store(t.withPort(p, add))
		}
	}
	e.unlockedPublish()
}

// compareAPIEndpoints orders API endpoints as the effective config does:
// by network, then name.
func compareAPIEndpoints(a, b config.Endpoint) int {
	if c := strings.Compare(a.Network, b.Network); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// unlockedSetCfgEndpoint adds the API endpoint ep to the applied
// config in its place (add), or removes it. The list is changed in place:
// every config unlockedApply is given is built afresh by
// unlockedEffective, and only the engine reads it, under mu, so no one
// else holds this array; shifting it costs no allocation, unlike a copy
// of thousands of endpoints. mu must be held.
func (e *Engine) unlockedSetCfgEndpoint(ep config.Endpoint, add bool) {
	nf := len(e.file.Endpoints)
	i, found := slices.BinarySearchFunc(e.cfg.Endpoints[nf:], ep, compareAPIEndpoints)
	switch {
	case add:
		e.cfg.Endpoints = slices.Insert(e.cfg.Endpoints, nf+i, ep)
	case found:
		e.cfg.Endpoints = slices.Delete(e.cfg.Endpoints, nf+i, nf+i+1)
	}
}

// snapshotWithPort returns a copy of s with the local port p added to its
// network (add) or removed: the flood list, proxy ARP and DNS names. It
// copies what changes and shares the rest; s is not written.
func snapshotWithPort(s *snapshot, p *port, add bool) *snapshot {
	next := *s
	next.byVNI = maps.Clone(s.byVNI)
	nv := *s.byVNI[p.net.cfg.VNI]
	nv.neigh = maps.Clone(nv.neigh)
	a := p.addr.Addr()
	if add {
		nv.ports = append(slices.Clip(nv.ports), p)
		nv.neigh[a] = p.mac
	} else {
		nv.ports = slices.DeleteFunc(slices.Clone(nv.ports), func(o *port) bool { return o == p })
		delete(nv.neigh, a)
	}
	next.byVNI[p.net.cfg.VNI] = &nv
	next.names = s.names.withPort(p.key.network, p.key.name, p.cfg.Aliases, a, add)
	return &next
}

// withPort returns a copy of t with an endpoint's name and aliases at ip
// added (add) or removed, in network; t is not written.
func (t *nameTable) withPort(network, name string, aliases []string, ip netip.Addr, add bool) *nameTable {
	next := &nameTable{fwd: maps.Clone(t.fwd), rev: maps.Clone(t.rev), shared: t.shared}
	fwd, rev := maps.Clone(t.fwd[network]), maps.Clone(t.rev[network])
	if fwd == nil {
		fwd, rev = map[string][]netip.Addr{}, map[netip.Addr][]string{}
	}
	next.fwd[network], next.rev[network] = fwd, rev
	for _, n := range append([]string{name}, aliases...) {
		n = strings.ToLower(n)
		fwd[n] = withItem(fwd[n], ip, add)
		if len(fwd[n]) == 0 {
			delete(fwd, n)
		}
	}
	rev[ip] = withItem(rev[ip], name, add)
	if len(rev[ip]) == 0 {
		delete(rev, ip)
	}
	return next
}

// withItem returns list with v added at the end (add) or removed,
// without writing list's array, which a published snapshot may share.
func withItem[T comparable](list []T, v T, add bool) []T {
	if add {
		if slices.Contains(list, v) {
			return list
		}
		return append(slices.Clip(list), v)
	}
	return slices.DeleteFunc(slices.Clone(list), func(o T) bool { return o == v })
}

// withPort returns a copy of t with the local port p's names as targets
// (add) or without them; t is not written.
func (t *pubTable) withPort(p *port, add bool) *pubTable {
	next := *t
	next.targets, next.local = maps.Clone(t.targets), maps.Clone(t.local)
	ip := p.addr.Addr()
	for _, n := range append([]string{p.key.name}, p.cfg.Aliases...) {
		k := pubNameKey{p.key.network, strings.ToLower(n)}
		if add {
			next.targets[k] = append(slices.Clip(next.targets[k]), pubTarget{ip: ip})
			slices.SortFunc(next.targets[k], func(a, b pubTarget) int { return a.ip.Compare(b.ip) })
			next.local[k] = append(slices.Clip(next.local[k]), ip)
		} else {
			next.targets[k] = slices.DeleteFunc(slices.Clone(next.targets[k]), func(o pubTarget) bool { return o.ip == ip && o.host == "" })
			next.local[k] = withItem(next.local[k], ip, false)
		}
		if len(next.targets[k]) == 0 {
			delete(next.targets, k)
		}
		if len(next.local[k]) == 0 {
			delete(next.local, k)
		}
	}
	return &next
}
