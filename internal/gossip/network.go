package gossip

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Limits of network definitions.
const (
	// maxVNI is the largest 24-bit VXLAN network identifier the wire
	// format carries; config.CheckNetwork narrows it.
	maxVNI = 1<<24 - 1
	// maxMTU is the largest MTU the wire format carries.
	maxMTU = 65535
	// maxTombstones bounds the deleted network names remembered. Beyond it
	// the oldest tombstones (by version) are forgotten, an eighth of the
	// bound at a time; see doc.go for what that risks.
	maxTombstones = 4096
)

// netBroadcastPrefix starts the queue name of a network broadcast, so that
// it replaces an older broadcast of the same network and no host's.
const netBroadcastPrefix = "\x00network\x00"

// ErrNetworkConflict is returned (wrapped, as *NetworkConflictError) by
// PutNetwork when another network already uses the VNI or subnet.
var ErrNetworkConflict = errors.New("gossip: network conflict")

// ErrUnknownNetwork is returned (wrapped) by DeleteNetwork for a name that
// has no live definition.
var ErrUnknownNetwork = errors.New("gossip: unknown network")

// ErrInvalidNetwork is returned (wrapped) by PutNetwork and DeleteNetwork
// for a definition or name they cannot replicate.
var ErrInvalidNetwork = errors.New("gossip: invalid network definition")

// NetworkDef is a network definition replicated to every host. Its fields
// mean what they mean in the configuration file; the package checks only
// what replication and uniqueness need (see PutNetwork).
type NetworkDef struct {
	// Name identifies the network cluster-wide.
	Name string
	// VNI is the VXLAN network identifier, 1 to 2^24-1.
	VNI uint32
	// Subnet is the network's address range.
	Subnet netip.Prefix
	// Gateway is the gateway address inside Subnet, or the zero Addr.
	Gateway netip.Addr
	// MTU is the container MTU, 0 for the daemon's default.
	MTU int
	// Encrypted sends the network's traffic through WireGuard.
	Encrypted bool
	// Egress lets the network reach addresses outside the overlay.
	Egress bool
}

// NetworkConflictError is returned by PutNetwork when a live definition of
// another name uses the same VNI or an overlapping subnet.
type NetworkConflictError struct {
	// Network is the name of the definition refused.
	Network string
	// Holder is the network that uses the VNI or subnet, and Host the host
	// that created it.
	Holder string
	Host   string
	// VNI is the VNI in dispute, or 0 when the subnets overlap.
	VNI uint32
	// Subnet is the holder's subnet when the subnets overlap.
	Subnet netip.Prefix
}

// Error implements error.
func (e *NetworkConflictError) Error() string {
	if e.VNI != 0 {
		return fmt.Sprintf("network %s: vni %d is already used by network %s (created on %s)", e.Network, e.VNI, e.Holder, e.Host)
	}
	return fmt.Sprintf("network %s: subnet overlaps subnet %s of network %s (created on %s)", e.Network, e.Subnet, e.Holder, e.Host)
}

// Unwrap returns ErrNetworkConflict, so that errors.Is matches it.
func (e *NetworkConflictError) Unwrap() error { return ErrNetworkConflict }

// netVersion totally orders the writes of network definitions: a Lamport
// clock, then the name of the host that wrote.
type netVersion struct {
	Clock  uint64
	Origin string
}

// compare returns -1, 0 or +1 as v orders before, equal to or after w.
func (v netVersion) compare(w netVersion) int {
	return cmp.Or(cmp.Compare(v.Clock, w.Clock), cmp.Compare(v.Origin, w.Origin))
}

// netEntry is the replicated state of one network name: a definition or a
// tombstone (Deleted, with only Def.Name set).
type netEntry struct {
	Def     NetworkDef
	Version netVersion
	// Created is the version of the write that created the definition;
	// updates keep it. It orders definitions that clash (see visible).
	Created netVersion
	Deleted bool
}

// compareNetEntries totally orders entries of one name: by version, then a
// tombstone after a definition, then by encoded form. The last two only
// matter when one host reused a version, e.g. after losing its state.
func compareNetEntries(a, b *netEntry) int {
	if c := a.Version.compare(b.Version); c != 0 {
		return c
	}
	if a.Deleted != b.Deleted {
		if a.Deleted {
			return 1
		}
		return -1
	}
	return bytes.Compare(appendNetEntry(nil, a), appendNetEntry(nil, b))
}

// netTable holds the replicated network definitions and tombstones. It is
// not safe for concurrent use; the Cluster guards it with its mutex.
type netTable struct {
	entries map[string]netEntry
	// clock is the Lamport clock: at least every clock seen.
	clock uint64
	tombs int
	// floor is the newest version of a forgotten tombstone; older
	// tombstones of unknown names are ignored.
	floor netVersion
	// view is the sorted visible list; rebuilt lazily into a new slice,
	// so an old view stays valid for comparison.
	view   []NetworkDef
	viewOK bool
	// shadowed maps hidden definitions to the network they clash with.
	shadowed map[string]string
	onShadow func(name, holder string)
}

func newNetTable() *netTable {
	return &netTable{entries: make(map[string]netEntry), shadowed: make(map[string]string)}
}

// next returns the version of a new local write by origin.
func (t *netTable) next(origin string) (netVersion, error) {
	if t.clock == math.MaxUint64 {
		return netVersion{}, errors.New("gossip: network clock exhausted")
	}
	t.clock++
	return netVersion{Clock: t.clock, Origin: origin}, nil
}

// apply takes e if it orders after the entry known for its name, and
// reports whether it changed the table. Either way the clock moves past
// e's.
func (t *netTable) apply(e netEntry) bool {
	t.clock = max(t.clock, e.Version.Clock, e.Created.Clock)
	old, ok := t.entries[e.Def.Name]
	if ok && compareNetEntries(&e, &old) <= 0 {
		return false
	}
	t.viewOK = false
	if ok && old.Deleted {
		t.tombs--
	}
	if e.Deleted && e.Version.compare(t.floor) <= 0 {
		// As old as a forgotten tombstone: delete without remembering,
		// and pass it on only if it removed a definition.
		delete(t.entries, e.Def.Name)
		return ok && !old.Deleted
	}
	if e.Deleted {
		t.tombs++
	}
	t.entries[e.Def.Name] = e
	if t.tombs > maxTombstones {
		t.evict()
	}
	return true
}

// evict forgets the oldest tombstones, down to seven eighths of the bound.
func (t *netTable) evict() {
	var tombs []netEntry
	for _, e := range t.entries {
		if e.Deleted {
			tombs = append(tombs, e)
		}
	}
	slices.SortFunc(tombs, func(a, b netEntry) int { return a.Version.compare(b.Version) })
	for _, e := range tombs[:len(tombs)-maxTombstones*7/8] {
		delete(t.entries, e.Def.Name)
		t.tombs--
		if e.Version.compare(t.floor) > 0 {
			t.floor = e.Version
		}
	}
}

// sorted returns every entry, tombstones included, sorted by name.
func (t *netTable) sorted() []netEntry {
	out := make([]netEntry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b netEntry) int { return cmp.Compare(a.Def.Name, b.Def.Name) })
	return out
}

// visible returns the live definitions sorted by name, without those that
// clash with an earlier-created one: definitions are taken in order of
// Created, and one whose VNI equals or whose subnet overlaps that of a
// definition already taken is hidden. The result is shared: callers must
// copy before handing it out.
func (t *netTable) visible() []NetworkDef {
	if t.viewOK {
		return t.view
	}
	var live []netEntry
	for _, e := range t.entries {
		if !e.Deleted {
			live = append(live, e)
		}
	}
	slices.SortFunc(live, func(a, b netEntry) int {
		return cmp.Or(a.Created.compare(b.Created), cmp.Compare(a.Def.Name, b.Def.Name))
	})
	view := make([]NetworkDef, 0, len(live))
	shadowed := make(map[string]string)
	for i := range live {
		d := &live[i].Def
		if h := clash(view, d); h != nil {
			shadowed[d.Name] = h.Name
			if t.shadowed[d.Name] != h.Name && t.onShadow != nil {
				t.onShadow(d.Name, h.Name)
			}
			continue
		}
		view = append(view, *d)
	}
	slices.SortFunc(view, func(a, b NetworkDef) int { return cmp.Compare(a.Name, b.Name) })
	t.view, t.shadowed, t.viewOK = view, shadowed, true
	return view
}

// clash returns the first definition of defs, other than d's own name,
// whose VNI equals d's or whose subnet overlaps d's.
func clash(defs []NetworkDef, d *NetworkDef) *NetworkDef {
	for i := range defs {
		o := &defs[i]
		if o.Name != d.Name && (o.VNI == d.VNI || o.Subnet.Overlaps(d.Subnet)) {
			return o
		}
	}
	return nil
}

// conflict checks def against the visible definitions of other names.
func (t *netTable) conflict(def *NetworkDef) error {
	h := clash(t.visible(), def)
	if h == nil {
		return nil
	}
	e := &NetworkConflictError{Network: def.Name, Holder: h.Name, Host: t.entries[h.Name].Created.Origin}
	if h.VNI == def.VNI {
		e.VNI = def.VNI
	} else {
		e.Subnet = h.Subnet
	}
	return e
}

// PutNetwork creates or updates the definition of def.Name on every host.
// Putting a definition equal to the known one does nothing. It fails with
// *NetworkConflictError (matching ErrNetworkConflict) when a visible
// definition of another name uses def.VNI or a subnet overlapping
// def.Subnet, and with ErrInvalidNetwork for an empty or over-long name, a
// VNI outside 1..2^24-1, an invalid subnet, a gateway outside it or an MTU
// outside 0..65535. The check sees what this host knows: a concurrent
// write elsewhere can still clash, which every host then resolves alike
// (see doc.go). Like Claim it first waits, at most ClaimTimeout, for the
// first attempt to join the seeds, so that a starting host writes after
// what the cluster knows.
func (c *Cluster) PutNetwork(def NetworkDef) error {
	if err := validNetwork(&def); err != nil {
		return err
	}
	if err := c.waitJoined(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if err := c.nets.conflict(&def); err != nil {
		return err
	}
	old, ok := c.nets.entries[def.Name]
	live := ok && !old.Deleted
	if live && old.Def == def {
		return nil
	}
	v, err := c.nets.next(c.cfg.NodeName)
	if err != nil {
		return err
	}
	e := netEntry{Def: def, Version: v, Created: v}
	if live {
		e.Created = old.Created
	}
	c.unlockedApplyNets([]netEntry{e}, true)
	return nil
}

// DeleteNetwork removes the definition of name on every host by writing a
// tombstone that outranks every write this host has seen. It fails with
// ErrUnknownNetwork when no live definition of name is known here. It
// waits for the first join attempt as PutNetwork does.
func (c *Cluster) DeleteNetwork(name string) error {
	if name == "" || len(name) > maxString {
		return fmt.Errorf("%w: name %q needs 1 to %d bytes", ErrInvalidNetwork, name, maxString)
	}
	if err := c.waitJoined(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if old, ok := c.nets.entries[name]; !ok || old.Deleted {
		return fmt.Errorf("network %s: %w", name, ErrUnknownNetwork)
	}
	v, err := c.nets.next(c.cfg.NodeName)
	if err != nil {
		return err
	}
	c.unlockedApplyNets([]netEntry{{Def: NetworkDef{Name: name}, Version: v, Deleted: true}}, true)
	return nil
}

// Networks returns the live network definitions sorted by name, without
// those hidden because they clash with an earlier-created definition (see
// doc.go). The result is a copy owned by the caller.
func (c *Cluster) Networks() []NetworkDef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nets.visible())
}

// NetworkState returns the replicated network state, definitions,
// tombstones, versions and clock, in a self-describing binary form for
// the daemon to persist. LoadNetworkState takes it back. The entries of
// the names in except are left out: the daemon does not persist a
// definition it could not apply.
func (c *Cluster) NetworkState(except ...string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	es := slices.DeleteFunc(c.nets.sorted(), func(e netEntry) bool { return slices.Contains(except, e.Def.Name) })
	return encodeNetState(c.nets.clock, es)
}

// LoadNetworkState merges a state saved by NetworkState into the known
// one, as if a peer had sent it: each entry is taken only if it outranks
// the entry known for its name, so loading an old state into a host that
// has already learned newer writes loses nothing, and a restarted host
// that is still alone knows its networks again. The clock moves past the
// saved one. Entries taken are gossiped on. Nothing is taken from a state
// that is malformed (ErrMalformed) or holds an invalid entry
// (ErrInvalidNetwork).
func (c *Cluster) LoadNetworkState(b []byte) error {
	clock, es, err := decodeNetState(b)
	if err != nil {
		return fmt.Errorf("gossip: cannot load network state: %w", err)
	}
	for i := range es {
		if err := validNetEntry(&es[i]); err != nil {
			return fmt.Errorf("gossip: cannot load network state: %w", err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.nets.clock = max(c.nets.clock, clock)
	c.unlockedApplyNets(es, true)
	return nil
}

// joinWait bounds how long a network change waits for the first join.
const joinWait = 5 * time.Second

// waitJoined waits for the first join attempt, at most joinWait.
func (c *Cluster) waitJoined() error {
	t := time.NewTimer(joinWait)
	defer t.Stop()
	select {
	case <-c.joined:
	case <-c.done:
		return ErrClosed
	case <-t.C:
	}
	return nil
}

// unlockedApplyNets takes in network entries, dropping invalid ones. With
// spread set, each entry taken is queued for gossip, as for entries that
// arrived by gossip or were written here. mu must be held.
func (c *Cluster) unlockedApplyNets(es []netEntry, spread bool) {
	prev := c.nets.visible()
	for i := range es {
		e := &es[i]
		if err := validNetEntry(e); err != nil {
			c.count(err, RefusedNetwork)
			continue
		}
		if c.nets.apply(*e) && spread {
			c.queue.QueueBroadcast(&broadcast{
				name: netBroadcastPrefix + e.Def.Name,
				msg:  encode(nil, &message{Type: msgNets, Nets: []netEntry{*e}}),
			})
		}
	}
	if !slices.Equal(prev, c.nets.visible()) {
		c.signal()
	}
}
