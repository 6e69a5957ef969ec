package tunnel

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAgeing is how long a learned MAC stays in the forwarding table
// without being seen again, the Linux bridge default.
const DefaultAgeing = 300 * time.Second

// DefaultFDBMax bounds the learned entries of one network's forwarding
// table. Entries of local ports and of gossip records do not count: they
// are bounded by the endpoints that exist. Beyond the bound a new source
// MAC from the underlay is not learned (frames to it are flooded) and is
// counted as fdb_full, so a peer or a container behind one that sends
// from ever new MACs cannot grow the daemon's memory without bound.
const DefaultFDBMax = 8192

// fdbEntry says where a MAC lives: behind a local port or behind a peer.
// Exactly one of port and peer is set. The entry is immutable except for
// seen, which learning refreshes with an atomic store so that the common
// case (a known MAC seen again at the same place) needs no write lock.
type fdbEntry struct {
	port *port
	peer *peer
	// static marks a local endpoint's own MAC, pinned marks a remote
	// endpoint's MAC from its gossip record. Neither ages, and learning
	// never moves them, so a frame from the underlay cannot steal a MAC
	// that a local port or a record owns.
	static bool
	pinned bool
	seen   atomic.Int64 // unix nanoseconds of the last frame from this MAC
}

// owned reports whether e is a static or pinned entry still in force.
func (e *fdbEntry) owned() bool { return (e.static || e.pinned) && e.alive() }

// counted reports whether e counts against the fdb's bound.
func (e *fdbEntry) counted() bool { return !e.static && !e.pinned }

// fdb is one network's forwarding table: MAC → local port or remote VTEP.
//
// Lookups take the read lock; the write lock is taken only when a mapping
// is added or changes, or by the ageing sweep. Entries whose port or peer
// has been removed are treated as unknown and dropped lazily.
type fdb struct {
	mu      sync.RWMutex
	m       map[MAC]*fdbEntry
	max     int // bound on learned entries
	learned int // learned entries in m, dead ones included; guarded by mu
}

// newFDB returns an empty table that learns at most max entries.
func newFDB(max int) *fdb { return &fdb{m: make(map[MAC]*fdbEntry), max: max} }

// lookup returns where mac lives, or nil, nil if it is unknown.
func (f *fdb) lookup(mac MAC) (*port, *peer) {
	f.mu.RLock()
	e := f.m[mac]
	f.mu.RUnlock()
	if e == nil || !e.alive() {
		return nil, nil
	}
	return e.port, e.peer
}

func (e *fdbEntry) alive() bool {
	if e.port != nil {
		return !e.port.closed.Load()
	}
	return !e.peer.removed.Load()
}

// learnResult says what learn did.
type learnResult uint8

const (
	// learnKept: mac was known at that place already; its age is reset.
	learnKept learnResult = iota
	// learnChanged: mac was added or moved.
	learnChanged
	// learnFull: mac was not learned, the table holds max learned entries.
	learnFull
	// learnOwned: mac was not learned, a local port or a gossip record
	// places it elsewhere. A frame from the underlay with such a source
	// is forged.
	learnOwned
)

// learn records that mac was seen behind p (a local port) or r (a peer) at
// now. A static or pinned entry is never overridden by learning, which
// keeps a remote frame from stealing a local container's MAC or one that
// a gossip record places elsewhere.
func (f *fdb) learn(mac MAC, p *port, r *peer, now int64) learnResult {
	f.mu.RLock()
	e := f.m[mac]
	f.mu.RUnlock()
	if e != nil && e.port == p && e.peer == r && e.alive() {
		if e.seen.Load() != now {
			e.seen.Store(now)
		}
		return learnKept
	}
	if e != nil && e.owned() {
		return learnOwned
	}
	ne := &fdbEntry{port: p, peer: r}
	ne.seen.Store(now)
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.m[mac]
	switch {
	case cur != nil && cur.owned():
		return learnOwned
	case cur != nil && cur.counted():
		// Moves or revives a learned entry: the count stays.
	case f.learned >= f.max:
		return learnFull
	default:
		f.learned++
	}
	f.m[mac] = ne
	return learnChanged
}

// setPins makes pins the table's pinned entries: MACs of remote endpoints
// from their gossip records, each behind its host's peer. Pinned entries
// no longer in pins are removed; a pin never replaces a local port's
// static entry in force.
func (f *fdb) setPins(pins map[MAC]*peer, now int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for mac, e := range f.m {
		if e.pinned && pins[mac] != e.peer {
			delete(f.m, mac)
		}
	}
	for mac, r := range pins {
		cur := f.m[mac]
		switch {
		case cur != nil && cur.pinned:
			continue
		case cur != nil && cur.static && cur.alive():
			continue
		case cur != nil && cur.counted():
			f.learned--
		}
		ne := &fdbEntry{peer: r, pinned: true}
		ne.seen.Store(now)
		f.m[mac] = ne
	}
}

// unlockedDelete removes the entry of mac. Callers hold f.mu.
func (f *fdb) unlockedDelete(mac MAC, e *fdbEntry) {
	if e.counted() {
		f.learned--
	}
	delete(f.m, mac)
}

// addStatic pins mac to the local port p.
func (f *fdb) addStatic(mac MAC, p *port) {
	e := &fdbEntry{port: p, static: true}
	f.mu.Lock()
	if cur := f.m[mac]; cur != nil && cur.counted() {
		f.learned--
	}
	f.m[mac] = e
	f.mu.Unlock()
}

// removePort drops every entry that points at p.
func (f *fdb) removePort(p *port) {
	f.mu.Lock()
	for mac, e := range f.m {
		if e.port == p {
			f.unlockedDelete(mac, e)
		}
	}
	f.mu.Unlock()
}

// removePeer drops every entry that points at r.
func (f *fdb) removePeer(r *peer) {
	f.mu.Lock()
	for mac, e := range f.m {
		if e.peer == r {
			f.unlockedDelete(mac, e)
		}
	}
	f.mu.Unlock()
}

// age removes learned entries not seen since before, and dead ones.
func (f *fdb) age(before int64) int {
	n := 0
	f.mu.Lock()
	for mac, e := range f.m {
		if !e.alive() || (e.counted() && e.seen.Load() < before) {
			f.unlockedDelete(mac, e)
			n++
		}
	}
	f.mu.Unlock()
	return n
}

// len returns the number of entries.
func (f *fdb) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.m)
}
