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

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/safe"
)

// allocTimeout bounds one address allocation at start-up or reload,
// waiting for a quorum to take a new block included.
const allocTimeout = 20 * time.Second

func defaultNewCluster(c gossip.Config, l *slog.Logger) (*gossip.Cluster, error) {
	return gossip.New(c, l)
}

// openControl starts gossip, the address-block log and the allocator.
// Called once from New.
func (e *Engine) openControl(cfg *config.Config) error {
	var seeds []netip.AddrPort
	for _, p := range cfg.Peers {
		if !p.Kernel && !p.Roaming() { // kernel VXLAN hosts run no gossip
			seeds = append(seeds, netip.AddrPortFrom(p.GossipAddress, cfg.Host.GossipPort))
		}
	}
	gc := gossip.Config{
		NodeName:  cfg.Host.Name,
		BindAddr:  cfg.Host.GossipAddress,
		Port:      int(cfg.Host.GossipPort),
		Seeds:     seeds,
		Peers:     gossipPeers(cfg),
		Secret:    cfg.Host.Secret,
		DeadAfter: cfg.Host.PeerTimeout,
		OnJoin:    e.peerJoined,
		Crash:     e.Reporter().With("component", "gossip"),
	}
	e.tunnelGossip(cfg, &gc)
	c, err := e.opts.NewCluster(gc, e.l.With("component", "gossip"))
	if err != nil {
		return fmt.Errorf("cannot start gossip on %s:%d: %w", cfg.Host.GossipAddress, cfg.Host.GossipPort, err)
	}
	e.cluster = c
	var blocks ipam.Blocks = ipam.Local{}
	var records ipam.Records
	if c != nil {
		records = c
	}
	switch {
	case c != nil && !cfg.Host.BehindNAT:
		if e.blocks, err = openBlocks(cfg, e.l.With("component", "raft"), e.Reporter().With("component", "raft")); err != nil {
			return err
		}
		if e.blocks != nil {
			blocks = e.blocks
		}
		if err := e.serveOutside(cfg); err != nil {
			return err
		}
	case c != nil: // a host behind NAT has no vote: its servers commit for it
		if e.outside, err = e.openOutside(cfg); err != nil {
			return err
		}
		if e.outside != nil {
			blocks = e.outside
		}
	}
	store, err := ipam.NewFileStore(filepath.Join(cfg.Host.StateDir, "ipam"))
	if err != nil {
		return fmt.Errorf("cannot open address store in %s: %w", cfg.Host.StateDir, err)
	}
	e.store = store
	if e.alloc, err = ipam.NewAllocator(store, cfg.Host.Name, blocks, records, e.l.With("component", "ipam"), e.Reporter().With("component", "ipam")); err != nil {
		return err
	}
	e.alloc.Restore()
	return nil
}

// gossipPeers returns the addresses gossip accepts: every peer's control
// address (host.gossip_address and [[peer]] gossip_address, which default
// to the data addresses), and the tunnel addresses of the peers gossip
// reaches inside WireGuard, which only an authenticated tunnel can carry.
func gossipPeers(cfg *config.Config) []netip.Addr {
	addrs := make([]netip.Addr, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		if !p.Roaming() {
			addrs = append(addrs, p.GossipAddress)
		}
		if p.Roaming() || cfg.Host.BehindNAT {
			addrs = append(addrs, p.TunnelAddress)
		}
	}
	return addrs
}

// tunnelGossip gives gossip the tunnel path on every host with a tunnel,
// so that a reload adding the first peer without an address routes its
// gossip through WireGuard at once (viaTunnel, SetViaTunnel). A host
// behind NAT gossips through the tunnel only.
func (e *Engine) tunnelGossip(cfg *config.Config, gc *gossip.Config) {
	if e.enc == nil || e.enc.Inner() == nil {
		return
	}
	gc.Tunnel = e.enc.Inner()
	gc.ViaTunnel = viaTunnel(cfg)
	if cfg.Host.BehindNAT {
		gc.NoUnderlay = true
		gc.BindAddr = cfg.Host.TunnelAddress
	}
}

// viaTunnel maps the gossip addresses of the peers gossip reaches inside
// WireGuard to their tunnel addresses: peers without an address, and on a
// host behind NAT every peer (a seed at its gossip address is reached
// through its tunnel).
func viaTunnel(cfg *config.Config) map[netip.Addr]netip.Addr {
	via := make(map[netip.Addr]netip.Addr)
	for _, p := range cfg.Peers {
		switch {
		case p.Roaming():
			via[p.TunnelAddress] = p.TunnelAddress
		case cfg.Host.BehindNAT:
			via[p.GossipAddress] = p.TunnelAddress
		}
	}
	return via
}

// openBlocks starts this host's member of the address-block log, whose
// voters are this host and every peer that runs vxwire (peers marked
// kernel and peers without an address have no vote), on their control
// addresses. A host without such peers, and without peers that ask it for
// blocks, returns nil: it holds every subnet alone (ipam.Local).
func openBlocks(cfg *config.Config, l *slog.Logger, crash safe.Reporter) (*consensus.Node, error) {
	voters := []consensus.Voter{{Name: cfg.Host.Name, Addr: netip.AddrPortFrom(cfg.Host.GossipAddress, cfg.Host.RaftPort)}}
	for _, p := range cfg.Peers {
		if !p.Kernel && !p.Roaming() { // a peer behind NAT has no vote either
			voters = append(voters, consensus.Voter{Name: p.Name, Addr: netip.AddrPortFrom(p.GossipAddress, cfg.Host.RaftPort)})
		}
	}
	if len(voters) == 1 && len(outsiders(cfg)) == 0 {
		// Alone, the host holds every subnet; with peers without a
		// vote it runs the log alone, to give them blocks.
		return nil, nil
	}
	if len(cfg.Host.Secret) == 0 {
		l.Warn("no host.secret_file: the address-block log is encrypted but not authenticated against strangers")
	}
	n, err := consensus.New(consensus.Config{
		Name: cfg.Host.Name, Bind: voters[0].Addr, Voters: voters,
		Secret: cfg.Host.Secret, Dir: filepath.Join(cfg.Host.StateDir, "raft"),
		Crash: crash,
	}, l)
	if err != nil {
		return nil, fmt.Errorf("cannot start the address-block log on %s: %w", voters[0].Addr, err)
	}
	return n, nil
}

// allocate returns the address of endpoint ep in network n: the configured
// one if it is free across the overlay, else a free one of the subnet. The
// result is persisted, so a restart gives the same address.
func (e *Engine) allocate(n config.Network, ep config.Endpoint) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), allocTimeout)
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
// records or the log's networks change. Both channels coalesce but never
// lose a change, and record MACs are pinned (they do not age), so nothing
// needs a periodic rebuild.
func (e *Engine) routineRecords() {
	var netChanges <-chan struct{} // nil without a log: never ready
	if e.blocks != nil {
		netChanges = e.blocks.NetworkChanges()
	}
	var others uint64 // the count of OthersChanged acted on
	for {
		select {
		case <-e.done:
			return
		case <-e.cluster.Changes():
			// This host's own records changed with its ports, and every
			// attach and detach publishes those itself: rebuilding here
			// would redo, under the lock, the work the incremental path
			// (incremental.go) saves.
			n := e.cluster.OthersChanged()
			if n == others {
				continue
			}
			others = n
		case <-netChanges:
		}
		e.mu.Lock()
		if !e.stopped {
			if e.unlockedNetworksChanged() {
				// A network was created or removed through the log.
				if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
					e.l.Warn("cannot apply replicated networks", "error", err)
				}
				e.unlockedSaveNetworks()
			} else {
				e.sw.publish(e.unlockedBuildSnapshot())
				e.unlockedSyncPublishes()
			}
		}
		e.mu.Unlock()
	}
}

// unlockedAddRecords adds the overlay's records to a snapshot being built:
// remote MACs into the network's pins behind their owner's peer (which
// publish makes FDB entries that learning from the underlay cannot move),
// every address into the proxy-ARP table, every name into DNS. The only
// state it changes is the control plane's count of refused records.
// portCounts is the number of local ports per network, to size the
// tables.
func (e *Engine) unlockedAddRecords(s *snapshot, portCounts map[string]int) {
	s.names = newNameTable()
	for name, c := range portCounts {
		// Sized for the local endpoints up front: a table of thousands
		// is rebuilt on every attach.
		s.names.fwd[name] = make(map[string][]netip.Addr, c)
		s.names.rev[name] = make(map[netip.Addr][]string, c)
	}
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
	bad := make(map[string]bool)
	for _, rec := range e.cluster.Records() {
		if rec.Host == e.cfg.Host.Name {
			continue
		}
		n := e.networks[rec.Network]
		if n == nil {
			continue
		}
		if err := config.CheckRecord(&n.cfg, rec.Name, rec.Aliases, rec.IP, rec.MAC[:]); err != nil {
			// Gossip checked all but the subnet, which only the hosts that
			// carry the network know.
			k := rec.Host + "/" + rec.Network + "/" + rec.Name + "/" + rec.IP.String()
			if bad[k] = true; !e.badRecords[k] {
				e.refused.Add(refusedRecord)
				e.l.Warn("record from gossip refused", "peer", rec.Host, "network", rec.Network, "error", err)
			}
			continue
		}
		nv := s.byVNI[n.cfg.VNI]
		if r, mac := byName[rec.Host], MAC(rec.MAC); r != nil && !mac.IsMulticast() && !mac.IsZero() {
			if nv.pins == nil {
				nv.pins = make(map[MAC]*peer)
			}
			nv.pins[mac] = r
		}
		if _, taken := nv.neigh[rec.IP]; !taken {
			nv.neigh[rec.IP] = MAC(rec.MAC)
		}
		s.names.add(rec.Network, rec.Name, rec.Aliases, rec.IP)
	}
	e.badRecords = bad
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
	t.addFwd(network, name, ip)
	for _, a := range aliases {
		t.addFwd(network, a, ip)
	}
	if !slices.Contains(t.rev[network][ip], name) {
		t.rev[network][ip] = append(t.rev[network][ip], name)
	}
}

func (t *nameTable) addFwd(network, name string, ip netip.Addr) {
	name = strings.ToLower(name)
	if !slices.Contains(t.fwd[network][name], ip) {
		t.fwd[network][name] = append(t.fwd[network][name], ip)
	}
}

// names serves the current snapshot's name table to the resolvers. It is
// safe for concurrent use.
type names struct{ snap *atomic.Pointer[snapshot] }

// Lookup returns the addresses of name in network. It keeps nothing of
// name, which the resolver lends for the call only (resolver.Names).
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

// remoteEndpoints returns the endpoints other hosts announce on the
// networks nets this host carries, as the data path takes them: records
// that fail the network's rules are left out.
func remoteEndpoints(recs []gossip.Record, self string, nets map[string]*network) []api.Endpoint {
	var out []api.Endpoint
	for _, r := range recs {
		n := remoteRecordNet(&r, self, nets)
		if n == nil {
			continue
		}
		out = append(out, api.Endpoint{
			Network: r.Network, Name: r.Name, Address: netip.PrefixFrom(r.IP, n.cfg.Subnet.Bits()).String(),
			MAC: MAC(r.MAC).String(), Aliases: r.Aliases, Host: r.Host, Source: "gossip",
		})
	}
	return out
}

// remoteRecordNet returns the network of r when the data path takes r:
// another host's record on a network of nets that passes the network's
// rules; else nil.
func remoteRecordNet(r *gossip.Record, self string, nets map[string]*network) *network {
	n := nets[r.Network]
	if r.Host == self || n == nil || config.CheckRecord(&n.cfg, r.Name, r.Aliases, r.IP, r.MAC[:]) != nil {
		return nil
	}
	return n
}

// nameHolder returns the other host whose record holds name on network,
// or "". Names compare as DNS does, ignoring case; aliases are not names
// and may be shared.
func nameHolder(recs []gossip.Record, self, network, name string) string {
	claim := config.NameHolder{Network: network, Name: name, Host: self}
	for _, r := range recs {
		if config.CheckNameClaim(claim, config.NameHolder{Network: r.Network, Name: r.Name, Host: r.Host}) != nil {
			return r.Host
		}
	}
	return ""
}

// unlockedRecords returns the overlay's records; none without gossip.
func (e *Engine) unlockedRecords() []gossip.Record {
	if e.cluster == nil {
		return nil
	}
	return e.cluster.Records()
}
