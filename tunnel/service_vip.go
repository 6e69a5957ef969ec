package tunnel

// One VIP per service across the overlay, with a log (e.blocks). The log
// holds each service's VIP (consensus/vips.go); this file keeps this
// host's part of it in step with the services this host applies:
//
//   - a service the log gives a VIP uses that address here: NAME resolves
//     to it, proxy ARP answers for it, the switch spreads its flows; the
//     host commits that it is one of the VIP's users;
//   - a service without one in the log gets an address of this host's
//     block (IPAM name vip.NAME) at once, so it works while the log is
//     out of reach, and the host commits it: if another host committed
//     first, this host adopts that address and releases its own;
//   - a service this host no longer applies is dropped from the VIP's
//     users; the host that allocated the VIP releases it once the log
//     holds it no more (every host dropped it).
//
// Commits run in a background worker per service (routineVIP), never
// under mu while waiting for the log. The NAT itself needs nothing more:
// it happens at the sender's host, which now knows the one address.
// Without a log, each host gives a service a VIP of its own (service.go).

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
)

// Bounds of VIP commits: one attempt, and the pause after a round that
// committed (the next one finds nothing to do once this replica applied
// it).
const (
	vipAttempt    = 10 * time.Second
	vipSettleWait = 100 * time.Millisecond
)

// unlockedSyncSharedVIPs sets e.vips from the log's VIPs and this host's
// own allocations for the services want, starts the commits that make
// the log match, and releases this host's allocations no longer needed.
// It reports whether a VIP changed. mu must be held.
func (e *Engine) unlockedSyncSharedVIPs(want map[svcKey]config.Network) bool {
	e.vipWant = want
	if e.vipOwn == nil {
		e.vipOwn = make(map[svcKey]bool)
	}
	changed := false
	for k := range e.vips {
		if _, ok := want[k]; !ok {
			delete(e.vips, k)
			changed = true
		}
	}
	errs := make(map[svcKey]string)
	self := e.file.Host.Name
	for k, n := range want {
		ip, err := e.unlockedVIPFor(k, n)
		if err != nil {
			if e.svcErrs[k] == "" {
				e.l.Warn("cannot give a service a virtual IP", "network", k.network, "service", k.name, "error", err)
			}
			errs[k] = fmt.Sprintf("no virtual IP: %v", err)
			if _, ok := e.vips[k]; ok {
				delete(e.vips, k)
				changed = true
			}
			continue
		}
		if old, ok := e.vips[k]; !ok || old != ip {
			e.vips[k] = ip
			changed = true
			e.l.Info("service has a virtual IP", "network", k.network, "service", k.name, "vip", ip)
		}
		if v, ok := e.blocks.ServiceVIP(k.network, k.name); !ok || v.IP != ip || !slices.Contains(v.Users, self) {
			e.unlockedVIPLater(k)
		}
	}
	e.svcErrs = errs
	for _, v := range e.blocks.ServiceVIPs() {
		k := svcKey{v.Network, v.Service}
		if _, ok := want[k]; !ok && slices.Contains(v.Users, self) {
			e.unlockedVIPLater(k)
		}
	}
	e.unlockedReleaseVIPs()
	return changed
}

// unlockedVIPFor returns the VIP service k of network n has here: the
// log's, or else this host's own allocation.
func (e *Engine) unlockedVIPFor(k svcKey, n config.Network) (netip.Addr, error) {
	if v, ok := e.blocks.ServiceVIP(k.network, k.name); ok {
		if err := config.CheckServiceVIP(v.IP, &n); err != nil {
			return netip.Addr{}, fmt.Errorf("the overlay's VIP (from %s): %w", v.Owner, err)
		}
		if have, ok := e.alloc.Address(k.network, vipEndpoint(k.name)); v.Owner == e.file.Host.Name && !ok {
			// The allocating host holds the VIP in its block while the
			// log has it (its IPAM state may be newer than the log's).
			if _, err := e.allocate(n, config.Endpoint{Network: k.network, Name: vipEndpoint(k.name), Address: v.IP}); err != nil {
				e.l.Warn("cannot hold the service's virtual IP in this host's block", "network", k.network, "service", k.name, "vip", v.IP, "error", err)
			}
		} else if ok && have == v.IP {
			e.vipOwn[k] = true
		}
		return v.IP, nil
	}
	a, err := e.allocate(n, config.Endpoint{Network: k.network, Name: vipEndpoint(k.name)})
	if err != nil {
		return netip.Addr{}, err
	}
	e.vipOwn[k] = true
	return a, nil
}

// unlockedReleaseVIPs releases this host's VIP allocations that are not
// the log's VIP of their service, unless the service is applied here and
// the log holds no VIP for it yet, or a commit for it is running. mu
// must be held.
func (e *Engine) unlockedReleaseVIPs() {
	// Candidates besides this run's allocations: the log's VIPs this host
	// allocated (before a restart, too), and a VIP of its own that a
	// service applied here kept from a version without shared VIPs.
	for _, v := range e.blocks.ServiceVIPs() {
		if v.Owner == e.file.Host.Name {
			e.vipOwn[svcKey{v.Network, v.Service}] = true
		}
	}
	for k := range e.vipWant {
		if _, ok := e.alloc.Address(k.network, vipEndpoint(k.name)); ok {
			e.vipOwn[k] = true
		}
	}
	for k := range e.vipOwn {
		if e.vipBusy[k] {
			continue
		}
		held, ok := e.alloc.Address(k.network, vipEndpoint(k.name))
		if !ok {
			delete(e.vipOwn, k)
			continue
		}
		v, inLog := e.blocks.ServiceVIP(k.network, k.name)
		_, wanted := e.vipWant[k]
		if inLog && v.Owner == e.file.Host.Name && v.IP == held || !inLog && wanted {
			continue
		}
		if err := e.alloc.Release(k.network, vipEndpoint(k.name)); err != nil {
			e.l.Warn("cannot release a service's virtual IP", "network", k.network, "service", k.name, "error", err)
			continue
		}
		delete(e.vipOwn, k)
		e.l.Info("service's virtual IP released", "network", k.network, "service", k.name, "vip", held)
	}
}

// unlockedVIPLater starts the worker that commits this host's use (or
// drop) of service k's VIP, unless one runs. mu must be held.
func (e *Engine) unlockedVIPLater(k svcKey) {
	if e.stopped || e.vipBusy[k] {
		return
	}
	if e.vipBusy == nil {
		e.vipBusy = make(map[svcKey]bool)
	}
	e.vipBusy[k] = true
	e.goSafe("service VIP", func() { e.routineVIP(k) })
}

// routineVIP commits this host's use or drop of service k's VIP until
// the log matches what this host applies, retrying while the log is out
// of reach; after each commit it syncs again (adopting another host's
// VIP, releasing its own).
func (e *Engine) routineVIP(k svcKey) {
	warned := false // one warning per run: a refusal repeats each round
	for {
		e.mu.Lock()
		use, ip, done := e.unlockedVIPAction(k)
		if done || e.stopped {
			delete(e.vipBusy, k)
			if !e.stopped {
				e.unlockedSyncPublishes()
			}
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		ctx, cancel := e.boundedContext(vipAttempt)
		var err error
		if use {
			_, err = e.blocks.UseVIP(ctx, k.network, k.name, ip)
		} else {
			err = e.blocks.DropVIP(ctx, k.network, k.name)
		}
		cancel()
		var refused *consensus.RefusedError
		switch {
		case errors.Is(err, consensus.ErrClosed):
			e.mu.Lock()
			delete(e.vipBusy, k)
			e.mu.Unlock()
			return
		case errors.As(err, &refused) && !warned:
			warned = true
			e.l.Warn("service's virtual IP refused by the overlay", "network", k.network, "service", k.name, "vip", ip, "error", err)
		case err != nil:
			e.l.Debug("service's virtual IP not committed yet", "network", k.network, "service", k.name, "error", err)
		}
		e.mu.Lock()
		if !e.stopped {
			// Adopt what the log committed before the next round.
			e.unlockedSyncPublishes()
		}
		e.mu.Unlock()
		// A round that committed is normally the last; one more waits a
		// little (this replica may not have applied the entry yet), so
		// the log is never flooded.
		wait := vipSettleWait
		if err != nil {
			wait = claimRetryWait
		}
		select {
		case <-e.done:
		case <-time.After(wait):
		}
	}
}

// unlockedVIPAction returns what routineVIP has to commit for service k:
// a use of ip, a drop (use false), or nothing (done). mu must be held.
func (e *Engine) unlockedVIPAction(k svcKey) (use bool, ip netip.Addr, done bool) {
	v, inLog := e.blocks.ServiceVIP(k.network, k.name)
	member := inLog && slices.Contains(v.Users, e.file.Host.Name)
	if _, wanted := e.vipWant[k]; wanted {
		ip, ok := e.vips[k]
		if !ok {
			return false, netip.Addr{}, !member
		}
		return true, ip, member && v.IP == ip
	}
	return false, netip.Addr{}, !member
}
