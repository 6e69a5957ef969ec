package tunnel

import (
	"math/rand/v2"
	"testing"
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
	f := newFDB()
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
	f := newFDB()
	p, r := &port{}, &peer{}
	mac := MAC{2, 0, 0, 0, 0, 1}
	f.addStatic(mac, p)
	if f.learn(mac, nil, r, 1) {
		t.Fatal("a remote frame moved a static entry")
	}
	if gp, gr := f.lookup(mac); gp != p || gr != nil {
		t.Fatalf("lookup = %p %p, want the static port", gp, gr)
	}
	if n := f.age(1 << 62); n != 0 {
		t.Fatalf("ageing removed %d static entries", n)
	}
}

func BenchmarkFDBLookupLearn(b *testing.B) {
	f := newFDB()
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
