package gossip

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Record is one endpoint as every host sees it: a name (and aliases) with
// its IP and MAC on a network, owned by the host that announced it.
// Records are values; slices returned by Cluster are copies.
type Record struct {
	// Network is the overlay network name.
	Network string
	// Name is the endpoint's DNS name on that network.
	Name string
	// Aliases are further DNS names of the endpoint.
	Aliases []string
	// IP is the endpoint's overlay address.
	IP netip.Addr
	// MAC is the endpoint's hardware address.
	MAC [6]byte
	// Host is the name of the host that owns the endpoint; SetLocal sets it
	// to the local NodeName.
	Host string
}

func (r *Record) clone() Record {
	c := *r
	c.Aliases = slices.Clone(r.Aliases)
	return c
}

func (r *Record) equal(o *Record) bool {
	return r.Network == o.Network && r.Name == o.Name && r.IP == o.IP &&
		r.MAC == o.MAC && r.Host == o.Host && slices.Equal(r.Aliases, o.Aliases)
}

func compareRecords(a, b Record) int {
	return cmp.Or(
		cmp.Compare(a.Network, b.Network),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Host, b.Host),
		a.IP.Compare(b.IP),
	)
}

func recordsEqual(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool { return x.equal(&y) })
}

// addrKey names an address of a network.
type addrKey struct {
	Network string
	IP      netip.Addr
}

// owner is who holds an address: an endpoint of a host.
type owner struct {
	Host     string
	Endpoint string
}

// entry is what is known about one host's announcements.
type entry struct {
	state hostState
	// dropped means the host failed or left: its records are hidden and
	// only its version is kept, so that stale copies still circulating
	// through other hosts are not taken back.
	dropped bool
	// seen is when the host was last known to be a live member or sent a
	// newer state; hosts unseen for a while are dropped by maintenance.
	seen time.Time
}

// table holds every host's state. It is not safe for concurrent use; the
// Cluster guards it with its mutex.
type table struct {
	self  string
	hosts map[string]*entry
	// live is memberlist's current view: alive or suspect members.
	live map[string]bool
	// failed remembers hosts that failed (not departed) and when, for the
	// claim quorum.
	failed map[string]time.Time
	// index maps addresses to their holders; rebuilt lazily.
	index   map[addrKey]owner
	indexOK bool
	// records is the sorted visible record list; rebuilt lazily.
	records   []Record
	recordsOK bool
}

func newTable(self string) *table {
	return &table{
		self:   self,
		hosts:  make(map[string]*entry),
		live:   map[string]bool{self: true},
		failed: make(map[string]time.Time),
	}
}

func (t *table) invalidate() {
	t.indexOK, t.recordsOK = false, false
}

// version returns the known version of host and whether one is known.
func (t *table) version(host string) (version, bool) {
	e, ok := t.hosts[host]
	if !ok {
		return version{}, false
	}
	return e.state.Version, true
}

// wants reports whether a state of host at v would be taken by apply.
func (t *table) wants(host string, v version) bool {
	e, ok := t.hosts[host]
	if !ok {
		return true
	}
	switch v.compare(e.state.Version) {
	case 1:
		return true
	case 0:
		// The same version again is taken back only if the host was
		// dropped and is a member again: it was wrongly declared dead.
		return e.dropped && t.live[host]
	}
	return false
}

// apply stores s if it is newer than what is known. It reports whether s
// was taken and whether the visible records changed.
func (t *table) apply(s hostState, now time.Time) (taken, changed bool) {
	if !t.wants(s.Host, s.Version) {
		return false, false
	}
	old, ok := t.hosts[s.Host]
	changed = !ok || old.dropped || !recordsEqual(old.state.Records, s.Records)
	if ok && old.dropped && len(s.Records) == 0 {
		changed = false
	}
	t.hosts[s.Host] = &entry{state: s, seen: now}
	t.invalidate()
	return true, changed
}

// drop hides host's records and reservations, keeping its version. It
// reports whether the visible records changed.
func (t *table) drop(host string) bool {
	e, ok := t.hosts[host]
	if !ok || e.dropped {
		return false
	}
	changed := len(e.state.Records) > 0
	e.dropped = true
	e.state.Records, e.state.Reservations = nil, nil
	t.invalidate()
	return changed
}

// visible returns the sorted records of all hosts not dropped. The slice is
// shared: callers must copy before handing it out.
func (t *table) visible() []Record {
	if t.recordsOK {
		return t.records
	}
	t.records = t.records[:0]
	for _, e := range t.hosts {
		if !e.dropped {
			t.records = append(t.records, e.state.Records...)
		}
	}
	slices.SortFunc(t.records, compareRecords)
	t.recordsOK = true
	return t.records
}

// lookup returns the holder of k among records and reservations.
func (t *table) lookup(k addrKey) (owner, bool) {
	if !t.indexOK {
		t.index = make(map[addrKey]owner, len(t.index))
		for host, e := range t.hosts {
			if e.dropped {
				continue
			}
			for _, r := range e.state.Reservations {
				t.index[addrKey{r.Network, r.IP}] = owner{host, r.Endpoint}
			}
			for _, r := range e.state.Records {
				t.index[addrKey{r.Network, r.IP}] = owner{host, r.Name}
			}
		}
		t.indexOK = true
	}
	o, ok := t.index[k]
	return o, ok
}

// states returns the states worth sending in a push/pull.
func (t *table) states() []hostState {
	out := make([]hostState, 0, len(t.hosts))
	for _, e := range t.hosts {
		if !e.dropped {
			out = append(out, e.state)
		}
	}
	return out
}

// sweep drops hosts that have not been live members for longer than
// grace, forgets failed hosts older than forget, and reports whether the
// visible records changed.
func (t *table) sweep(now time.Time, grace, forget time.Duration) bool {
	changed := false
	for host, e := range t.hosts {
		if host == t.self || e.dropped {
			continue
		}
		if t.live[host] {
			e.seen = now
			continue
		}
		if now.Sub(e.seen) > grace {
			changed = t.drop(host) || changed
		}
	}
	for host, at := range t.failed {
		if now.Sub(at) > forget {
			delete(t.failed, host)
		}
	}
	return changed
}
