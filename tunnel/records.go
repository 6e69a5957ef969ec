package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipam"
)

// claimTimeout bounds one address allocation, claims across the overlay
// included.
const claimTimeout = 20 * time.Second

// localClaimer is the ipam.Claimer of an engine without gossip: it has no
// one to ask, so every claim the local allocator accepts stands.
type localClaimer struct{}

func (localClaimer) Claim(context.Context, string, netip.Addr, string) error { return nil }
func (localClaimer) Unclaim(string, netip.Addr, string)                      {}
func (localClaimer) Lookup(string, netip.Addr) (string, string, bool)        { return "", "", false }

func defaultNewCluster(c gossip.Config, l *slog.Logger) (*gossip.Cluster, error) {
	return gossip.New(c, l)
}

// openControl starts gossip and the allocator. Called once from New.
func (e *Engine) openControl(cfg *config.Config) error {
	var seeds []netip.AddrPort
	for _, p := range cfg.Peers {
		seeds = append(seeds, netip.AddrPortFrom(p.Address, cfg.Host.GossipPort))
	}
	c, err := e.opts.NewCluster(gossip.Config{
		NodeName:  cfg.Host.Name,
		BindAddr:  cfg.Host.Address,
		Port:      int(cfg.Host.GossipPort),
		Seeds:     seeds,
		Secret:    cfg.Host.Secret,
		DeadAfter: cfg.Host.PeerTimeout,
	}, e.l.With("component", "gossip"))
	if err != nil {
		return fmt.Errorf("cannot start gossip on %s:%d: %w", cfg.Host.Address, cfg.Host.GossipPort, err)
	}
	e.cluster = c
	var claimer ipam.Claimer = localClaimer{}
	if c != nil {
		claimer = c
	}
	store, err := ipam.NewFileStore(filepath.Join(cfg.Host.StateDir, "ipam"))
	if err != nil {
		return fmt.Errorf("cannot open address store in %s: %w", cfg.Host.StateDir, err)
	}
	e.store = store
	if e.alloc, err = ipam.NewAllocator(store, cfg.Host.Name, claimer, e.l.With("component", "ipam")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	if err := e.alloc.Restore(ctx); err != nil {
		e.l.Warn("some saved addresses are now held by others", "error", err)
	}
	return nil
}

// allocate returns the address of endpoint ep in network n: the configured
// one if it is free across the overlay, else a free one of the subnet. The
// result is persisted, so a restart gives the same address.
func (e *Engine) allocate(n config.Network, ep config.Endpoint) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), claimTimeout)
	defer cancel()
	return e.alloc.Allocate(ctx, n.Name, n.Subnet, n.Gateway, ep.Name, ep.Address)
}

// unlockedPublish announces this host's endpoints to the overlay.
func (e *Engine) unlockedPublish() {
	if e.cluster == nil {
		return
	}
	recs := make([]gossip.Record, 0, len(e.ports))
	for _, p := range e.ports {
		recs = append(recs, gossip.Record{
			Network: p.key.network, Name: p.key.name, Aliases: p.cfg.Aliases,
			IP: p.addr.Addr(), MAC: p.mac, Host: e.cfg.Host.Name,
		})
	}
	e.cluster.SetLocal(recs)
}

// routineRecords rebuilds the data path's view whenever the overlay's
// records change, and refreshes remote MACs in the FDB periodically so
// that they do not age out while their records stand.
func (e *Engine) routineRecords() {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.Ageing / 3)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case <-e.cluster.Changes():
		case <-t.C:
		}
		e.mu.Lock()
		if !e.stopped {
			if e.unlockedNetworksChanged() {
				// A network was created or removed on another host.
				if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
					e.l.Warn("cannot apply replicated networks", "error", err)
				}
				e.unlockedSaveNetworks()
			} else {
				e.snap.Store(e.unlockedBuildSnapshot())
			}
		}
		e.mu.Unlock()
	}
}

// unlockedAddRecords adds the overlay's records to a snapshot being built:
// remote MACs go into the FDB behind their owner's peer, every address into
// the proxy-ARP table, every name into DNS.
func (e *Engine) unlockedAddRecords(s *snapshot) {
	s.names = newNameTable()
	for _, p := range e.ports {
		s.names.add(p.key.network, p.key.name, p.cfg.Aliases, p.addr.Addr())
	}
	if e.cluster == nil {
		return
	}
	byName := make(map[string]*peer, len(e.peers))
	for _, r := range e.peers {
		byName[r.name] = r
	}
	now := time.Now().UnixNano()
	for _, rec := range e.cluster.Records() {
		if rec.Host == e.cfg.Host.Name {
			continue
		}
		n := e.networks[rec.Network]
		if n == nil {
			continue
		}
		nv := s.byVNI[n.cfg.VNI]
		if r := byName[rec.Host]; r != nil {
			n.fdb.learn(MAC(rec.MAC), nil, r, now)
		}
		if _, taken := nv.neigh[rec.IP]; !taken {
			nv.neigh[rec.IP] = MAC(rec.MAC)
		}
		s.names.add(rec.Network, rec.Name, rec.Aliases, rec.IP)
	}
}

// nameTable is the immutable DNS view of one snapshot: per network, names
// and aliases to addresses and addresses to names.
type nameTable struct {
	fwd map[string]map[string][]netip.Addr
	rev map[string]map[netip.Addr][]string
	// shared holds, per network, the local containers' addresses there and
	// the other networks each is attached to (see multinet.go).
	shared map[string]map[netip.Addr][]string
}

func newNameTable() *nameTable {
	return &nameTable{
		fwd:    map[string]map[string][]netip.Addr{},
		rev:    map[string]map[netip.Addr][]string{},
		shared: map[string]map[netip.Addr][]string{},
	}
}

func (t *nameTable) add(network, name string, aliases []string, ip netip.Addr) {
	if t.fwd[network] == nil {
		t.fwd[network] = map[string][]netip.Addr{}
		t.rev[network] = map[netip.Addr][]string{}
	}
	for _, n := range append([]string{name}, aliases...) {
		n = strings.ToLower(n)
		if !slices.Contains(t.fwd[network][n], ip) {
			t.fwd[network][n] = append(t.fwd[network][n], ip)
		}
	}
	if !slices.Contains(t.rev[network][ip], name) {
		t.rev[network][ip] = append(t.rev[network][ip], name)
	}
}

// names serves the current snapshot's name table to the resolvers. It is
// safe for concurrent use.
type names struct{ snap *atomic.Pointer[snapshot] }

// Lookup returns the addresses of name in network.
func (n names) Lookup(network, name string) []netip.Addr {
	return n.snap.Load().names.fwd[network][name]
}

// Reverse returns the names of addr in network.
func (n names) Reverse(network string, addr netip.Addr) []string {
	return n.snap.Load().names.rev[network][addr]
}

// unlockedNetworksChanged reports whether the effective config's networks
// differ from those applied.
func (e *Engine) unlockedNetworksChanged() bool {
	return !slices.Equal(e.unlockedEffective().Networks, e.cfg.Networks)
}
