package tunnel

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/encap"
)

// TestFDBRandom checks the FDB against a naive model under random learning,
// static pins, removals and ageing (the approach of wireguard-go's
// allowedips_rand_test.go).
func TestFDBRandom(t *testing.T) {
	type where struct {
		p      *port
		r      *peer
		static bool
		seen   int64
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ports := []*port{{}, {}, {}}
	peers := []*peer{{name: "a"}, {name: "b"}}
	macs := make([]MAC, 16)
	for i := range macs {
		macs[i] = MAC{2, 0, 0, 0, 0, byte(i)}
	}
	f := newFDB(DefaultFDBMax)
	model := map[MAC]where{}
	alive := func(w where) bool {
		if w.p != nil {
			return !w.p.closed.Load()
		}
		return !w.r.removed.Load()
	}
	for step := 0; step < 20000; step++ {
		now := int64(step)
		mac := macs[rng.IntN(len(macs))]
		switch op := rng.IntN(100); {
		case op < 60:
			var p *port
			var r *peer
			if rng.IntN(2) == 0 {
				p = ports[rng.IntN(len(ports))]
			} else {
				r = peers[rng.IntN(len(peers))]
			}
			f.learn(mac, p, r, now)
			if w, ok := model[mac]; ok && w.static && alive(w) {
				break
			}
			model[mac] = where{p: p, r: r, seen: now}
		case op < 65:
			p := ports[rng.IntN(len(ports))]
			f.addStatic(mac, p)
			model[mac] = where{p: p, static: true}
		case op < 67:
			p := ports[rng.IntN(len(ports))]
			f.removePort(p)
			for m, w := range model {
				if w.p == p {
					delete(model, m)
				}
			}
		case op < 69:
			r := peers[rng.IntN(len(peers))]
			f.removePeer(r)
			for m, w := range model {
				if w.r == r {
					delete(model, m)
				}
			}
		case op < 72:
			before := now - int64(rng.IntN(200))
			f.age(before)
			for m, w := range model {
				if !alive(w) || (!w.static && w.seen < before) {
					delete(model, m)
				}
			}
		default:
			p, r := f.lookup(mac)
			w, ok := model[mac]
			if !ok || !alive(w) {
				w = where{}
			}
			if p != w.p || r != w.r {
				t.Fatalf("step %d: lookup(%v) = (%p, %p), model (%p, %p)", step, mac, p, r, w.p, w.r)
			}
		}
		if rng.IntN(1000) == 0 {
			// A port closing makes its entries read as unknown at once.
			p := ports[rng.IntN(len(ports))]
			p.closed.Store(!p.closed.Load())
		}
	}
}

func TestFDBStaticNotStolen(t *testing.T) {
	f := newFDB(DefaultFDBMax)
	p, r := &port{}, &peer{}
	mac := MAC{2, 0, 0, 0, 0, 1}
	f.addStatic(mac, p)
	if got := f.learn(mac, nil, r, 1); got != learnOwned {
		t.Fatalf("a remote frame learning a static entry: result %d, want learnOwned", got)
	}
	if gp, gr := f.lookup(mac); gp != p || gr != nil {
		t.Fatalf("lookup = %p %p, want the static port", gp, gr)
	}
	if n := f.age(1 << 62); n != 0 {
		t.Fatalf("ageing removed %d static entries", n)
	}
}

func BenchmarkFDBLookupLearn(b *testing.B) {
	f := newFDB(DefaultFDBMax)
	r := &peer{}
	for i := 0; i < 256; i++ {
		f.learn(MAC{2, 0, 0, 0, 1, byte(i)}, nil, r, 1)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			mac := MAC{2, 0, 0, 0, 1, byte(i)}
			f.learn(mac, nil, r, 1)
			f.lookup(mac)
			i++
		}
	})
}

// TestFDBBound fills a table of 4 learned entries: a fifth MAC is refused
// and reported full, while moving a known MAC, static entries, pins and
// MACs learned after ageing or a peer's removal still fit.
func TestFDBBound(t *testing.T) {
	f := newFDB(4)
	r1, r2 := &peer{name: "r1"}, &peer{name: "r2"}
	mac := func(i int) MAC { return MAC{2, 0, 0, 0, 1, byte(i)} }
	for i := range 4 {
		if got := f.learn(mac(i), nil, r1, 1); got != learnChanged {
			t.Fatalf("learn %d: result %d", i, got)
		}
	}
	if got := f.learn(mac(4), nil, r1, 1); got != learnFull {
		t.Fatalf("fifth MAC: result %d, want refused as full", got)
	}
	if _, r := f.lookup(mac(4)); r != nil {
		t.Fatal("a refused MAC was learned")
	}
	if got := f.learn(mac(0), nil, r2, 2); got != learnChanged {
		t.Fatalf("moving a known MAC: result %d", got)
	}
	f.addStatic(MAC{2, 0, 0, 0, 2, 1}, &port{})
	f.setPins(map[MAC]*peer{{2, 0, 0, 0, 3, 1}: r1}, 1)
	if f.len() != 6 {
		t.Fatalf("len = %d, want 4 learned + static + pinned", f.len())
	}
	f.removePeer(r2) // frees mac(0)
	if f.learn(mac(4), nil, r1, 3) == learnFull {
		t.Fatal("no room after a peer's entries were removed")
	}
	if f.learn(mac(5), nil, r1, 3) != learnFull {
		t.Fatal("the bound does not hold after a removal")
	}
	if n := f.age(3); n != 3 { // mac(1..3) seen at 1
		t.Fatalf("ageing removed %d entries, want 3", n)
	}
	for i := 5; i < 8; i++ {
		if f.learn(mac(i), nil, r1, 4) == learnFull {
			t.Fatalf("learn %d after ageing: full", i)
		}
	}
	if f.learn(mac(8), nil, r1, 4) != learnFull {
		t.Fatal("the bound does not hold after ageing")
	}
}

// TestFDBPinned checks entries from gossip records: learning from the
// underlay does not move them (before, a forged frame from any peer moved
// a record's MAC to itself), they do not age, a pin never replaces a
// local port's entry, and an unpinned MAC is learnable again.
func TestFDBPinned(t *testing.T) {
	f := newFDB(DefaultFDBMax)
	owner, thief := &peer{name: "owner"}, &peer{name: "thief"}
	p := &port{}
	rec, local := MAC{2, 0, 0, 0, 0, 1}, MAC{2, 0, 0, 0, 0, 2}
	f.addStatic(local, p)
	f.learn(rec, nil, thief, 1) // learned first, then a record arrives
	f.setPins(map[MAC]*peer{rec: owner, local: owner}, 1)
	if _, r := f.lookup(rec); r != owner {
		t.Fatalf("record MAC behind %v, want owner", r)
	}
	if gp, _ := f.lookup(local); gp != p {
		t.Fatal("a record took a local port's MAC")
	}
	if got := f.learn(rec, nil, thief, 2); got != learnOwned {
		t.Fatalf("learning a pinned MAC from another peer: result %d, want learnOwned", got)
	}
	if _, r := f.lookup(rec); r != owner {
		t.Fatal("pinned MAC stolen")
	}
	if n := f.age(1 << 62); n != 0 {
		t.Fatalf("ageing removed %d pinned or static entries", n)
	}
	f.setPins(map[MAC]*peer{rec: thief}, 3) // the endpoint moved hosts
	if _, r := f.lookup(rec); r != thief {
		t.Fatal("pin did not follow its record")
	}
	f.setPins(nil, 4)
	if _, r := f.lookup(rec); r != nil {
		t.Fatal("an unpinned MAC is still there")
	}
	if f.learn(rec, nil, owner, 5) != learnChanged {
		t.Fatal("an unpinned MAC cannot be learned")
	}
	owner.removed.Store(true)
	f.setPins(map[MAC]*peer{local: thief}, 6)
	if gp, _ := f.lookup(local); gp != p {
		t.Fatal("a pin replaced a static entry")
	}
}

// TestUnderlayLearningBounded sends frames from 3 new source MACs through
// a network whose table may learn 1: the other 2 are counted as fdb_full
// and still delivered.
func TestUnderlayLearningBounded(t *testing.T) {
	e, devs := hotPathEngine(t)
	e.networks["blue"].fdb.max = 1
	bufs, sizes, eps := underlayBatch(3, macOf("10.77.0.10"), netip.MustParseAddrPort("198.18.0.2:4789"))
	for i := range bufs {
		bufs[i][encap.HeaderLen+11] = byte(i) // source MAC 02:00:00:00:00:0i
	}
	var s scratch
	e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 3, false)
	if got := e.networks["blue"].stats.drops[dropFDBFull].Load(); got != 2 {
		t.Errorf("fdb_full = %d, want 2", got)
	}
	if devs["h1-a"].written != 3 {
		t.Errorf("a got %d frames, want 3", devs["h1-a"].written)
	}
}

// TestUnderlayForgedSourceMAC sends datagrams from peer h2 whose source
// MAC is local container b's, or one that a gossip record places behind
// another host: both are dropped as spoofed and not delivered, while a
// fresh source MAC is delivered and learned.
func TestUnderlayForgedSourceMAC(t *testing.T) {
	e, devs := hotPathEngine(t)
	recMAC := MAC{2, 0, 0, 0, 0, 0x33}
	e.networks["blue"].fdb.setPins(map[MAC]*peer{recMAC: {name: "h3"}}, 1)
	var s scratch
	for _, tc := range []struct {
		name    string
		src     MAC
		spoofed bool
	}{
		{"local container's MAC", macOf("10.77.0.11"), true},
		{"MAC of another host's record", recMAC, true},
		{"fresh MAC", MAC{2, 0, 0, 0, 0, 0x44}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bufs, sizes, eps := underlayBatch(1, macOf("10.77.0.10"), netip.MustParseAddrPort("198.18.0.2:4789"))
			copy(bufs[0][encap.HeaderLen+6:], tc.src[:])
			before, spoofed := devs["h1-a"].written, e.sw.host.drops[dropSpoofed].Load()
			e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 1, false)
			gotSpoofed := e.sw.host.drops[dropSpoofed].Load() - spoofed
			delivered := devs["h1-a"].written - before
			if tc.spoofed != (gotSpoofed == 1) || tc.spoofed == (delivered == 1) {
				t.Fatalf("spoofed drops +%d, delivered %d; want spoofed %v", gotSpoofed, delivered, tc.spoofed)
			}
		})
	}
	if _, r := e.networks["blue"].fdb.lookup(MAC{2, 0, 0, 0, 0, 0x44}); r != e.peers["h2"] {
		t.Error("the fresh MAC was not learned behind h2")
	}
}
