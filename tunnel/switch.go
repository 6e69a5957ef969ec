package tunnel

// The switch: frame in, decision, frame out. It is the data plane of the
// host, apart from the control plane (Engine) that owns it:
//
//	Engine: config file, API, gossip records, reload, state_dir, resolv.conf
//	   │ unlockedBuildSnapshot (snapshot.go): no side effects
//	   ▼ sw.publish(snap)
//	Switch
//	   port → switchFromPort            switch_port.go
//	   underlay → switchFromUnderlay    switch_underlay.go
//	   groups, flush, deliver, send     switch_deliver.go
//	   proxy ARP                        switch_arp.go
//	   DNS fast path                    switch_dns.go
//	   port guard, flood limiter        switch_guard.go
//	   FDB ageing                       routineAge, fdb.go
//
// The switch reads one immutable snapshot per batch and writes only its
// counters and the forwarding tables (learning, ageing, and the pins a
// snapshot carries, applied by publish). It never takes the Engine's lock.

import (
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
)

// Switch is the data plane of one host: per-network L2 switching between
// the local ports and the peers behind the underlay. The control plane
// sets tx and enc once, before the switch's goroutines start, and then
// changes what it does only through publish.
type Switch struct {
	l    *slog.Logger
	snap atomic.Pointer[snapshot] // loaded once per batch

	tx  []encap.Conn // sending sockets, picked by a frame's flow hash
	enc CryptoConn   // the WireGuard device; nil when the host has no key

	poolSmall *batchPool // see poolFor
	poolJumbo *batchPool

	host counters // the host's totals, shown by status
}

// newSwitch returns a switch with an empty snapshot: it drops everything
// until the first publish.
func newSwitch(l *slog.Logger) *Switch {
	sw := &Switch{
		l:         l,
		poolSmall: newBatchPool(portBatch, smallFrameBuf),
		poolJumbo: newBatchPool(portBatch, jumboFrameBuf),
	}
	sw.snap.Store(&snapshot{names: newNameTable()})
	return sw
}

// snapshot is the immutable view the data path reads, swapped whole on
// every change and loaded once per batch. Building one has no side
// effects; publish applies what it carries for the forwarding tables.
type snapshot struct {
	byVNI  map[uint32]*netView
	byAddr map[netip.Addr]*peer
	peers  []*peer
	names  *nameTable       // DNS view of the overlay's records
	hosts  map[string]*port // each network's host endpoint on this host (laptop.go)
}

// netView is a network as the data path sees it, with its precomputed
// flood lists (STYLE.md §2.8).
type netView struct {
	net   *network
	peers []*peer // flood list: for an encrypted network only peers with keys
	ports []*port // local ports, the gateway included
	// encrypted networks send through the WireGuard device only and drop
	// plaintext VXLAN.
	encrypted bool
	// neigh maps the network's known IPv4 addresses to their MACs, for
	// proxy ARP.
	neigh map[netip.Addr]MAC
	// pins are the MACs of remote endpoints from their gossip records,
	// each behind its host's peer; publish makes them the network's
	// pinned FDB entries.
	pins map[MAC]*peer
}

// publish makes s the view the data path reads. The forwarding tables
// take s's pins first, so that no batch reads s before a record's MAC is
// pinned behind its host. Callers serialize publish (the Engine's lock).
func (sw *Switch) publish(s *snapshot) {
	now := time.Now().UnixNano()
	for _, nv := range s.byVNI {
		nv.net.fdb.setPins(nv.pins, now)
	}
	sw.snap.Store(s)
}

// routineAge removes forwarding entries not seen for ageing, every tenth
// of it (at least every second), until done is closed.
func (sw *Switch) routineAge(ageing time.Duration, done <-chan struct{}) {
	period := max(ageing/10, time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			before := now.Add(-ageing).UnixNano()
			for _, nv := range sw.snap.Load().byVNI {
				nv.net.fdb.age(before)
			}
		}
	}
}

// poolFor returns the pool whose buffers hold frames of a port with mtu.
func (sw *Switch) poolFor(mtu int) *batchPool {
	if encap.HeaderLen+ether.HeaderLen+mtu <= smallFrameBuf {
		return sw.poolSmall
	}
	return sw.poolJumbo
}
