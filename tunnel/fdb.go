package tunnel

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAgeing is how long a learned MAC stays in the forwarding table
// without being seen again, the Linux bridge default.
const DefaultAgeing = 300 * time.Second

// fdbEntry says where a MAC lives: behind a local port or behind a peer.
// Exactly one of port and peer is set. The entry is immutable except for
// seen, which learning refreshes with an atomic store so that the common
// case (a known MAC seen again at the same place) needs no write lock.
type fdbEntry struct {
	port   *port
	peer   *peer
	static bool         // a local endpoint's own MAC: never ages, never moves
	seen   atomic.Int64 // unix nanoseconds of the last frame from this MAC
}

// fdb is one network's forwarding table: MAC → local port or remote VTEP.
//
// Lookups take the read lock; the write lock is taken only when a mapping
// is added or changes, or by the ageing sweep. Entries whose port or peer
// has been removed are treated as unknown and dropped lazily.
type fdb struct {
	mu sync.RWMutex
	m  map[MAC]*fdbEntry
}

func newFDB() *fdb { return &fdb{m: make(map[MAC]*fdbEntry)} }

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

// learn records that mac was seen behind p (a local port) or r (a peer) at
// now. A static entry is never overridden by learning, which keeps a
// remote frame from stealing a local container's MAC. It reports whether
// the table changed.
func (f *fdb) learn(mac MAC, p *port, r *peer, now int64) bool {
	f.mu.RLock()
	e := f.m[mac]
	f.mu.RUnlock()
	if e != nil && e.port == p && e.peer == r && e.alive() {
		if e.seen.Load() != now {
			e.seen.Store(now)
		}
		return false
	}
	if e != nil && e.static && e.alive() {
		return false
	}
	ne := &fdbEntry{port: p, peer: r}
	ne.seen.Store(now)
	f.mu.Lock()
	if cur := f.m[mac]; cur != nil && cur.static && cur.alive() {
		f.mu.Unlock()
		return false
	}
	f.m[mac] = ne
	f.mu.Unlock()
	return true
}

// addStatic pins mac to the local port p.
func (f *fdb) addStatic(mac MAC, p *port) {
	e := &fdbEntry{port: p, static: true}
	f.mu.Lock()
	f.m[mac] = e
	f.mu.Unlock()
}

// removePort drops every entry that points at p.
func (f *fdb) removePort(p *port) {
	f.mu.Lock()
	for mac, e := range f.m {
		if e.port == p {
			delete(f.m, mac)
		}
	}
	f.mu.Unlock()
}

// removePeer drops every entry that points at r.
func (f *fdb) removePeer(r *peer) {
	f.mu.Lock()
	for mac, e := range f.m {
		if e.peer == r {
			delete(f.m, mac)
		}
	}
	f.mu.Unlock()
}

// age removes learned entries not seen since before, and dead ones.
func (f *fdb) age(before int64) int {
	n := 0
	f.mu.Lock()
	for mac, e := range f.m {
		if !e.alive() || (!e.static && e.seen.Load() < before) {
			delete(f.m, mac)
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
