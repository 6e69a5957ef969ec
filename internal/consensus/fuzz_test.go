package consensus

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/config"
)

// FuzzApply feeds arbitrary log entries to the state machine: it must
// refuse what is malformed without panicking, and whatever it accepts
// must keep its invariants (no two blocks of a network overlap; the
// networks pass the config rules and no two share a name, a VNI or
// overlapping subnets; every claimed name is a valid label held once,
// and a name another host claimed first stays its; every VIP passes the
// config rules, holds its own address, and another host adopts it) and
// survive a snapshot round trip.
func FuzzApply(f *testing.F) {
	for _, c := range []command{
		{Op: opTake, Network: "blue", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Bits: 28, Host: "h1", ID: 1},
		{Op: opPin, Network: "blue", IP: netip.MustParseAddr("10.77.0.9"), Host: "h2", Endpoint: "web"},
		{Op: opUnpin, Network: "blue", IP: netip.MustParseAddr("10.77.0.9"), Host: "h2", Endpoint: "web"},
		netCreate(testNet("blue", 300, "10.77.0.0/24"), "h1", 3),
		netCreate(testNet("red", 300, "10.78.0.0/24"), "h2", 4),
		{Op: opNetRemove, Network: "blue", Host: "h2"},
		{Op: opNetRemove, Network: "blue", Host: "h2", Among: []string{"h1", "h3"}},
		{Op: opClaim, Network: "blue", Endpoint: "web", Host: "h1", ID: 5},
		{Op: opClaim, Network: "blue", Endpoint: "web", Host: "h2", ID: 6},
		{Op: opUnclaim, Network: "blue", Endpoint: "web", Host: "h1", ID: 5},
		{Op: opPubAdd, Network: "blue", Host: "h1", Pub: &config.Publish{Network: "blue", Port: 80, Proto: "tcp", Target: "web", TargetPort: 80, Mode: "host"}},
		{Op: opPubRemove, Network: "blue", Host: "h1", Pub: &config.Publish{Network: "blue", Port: 80, Proto: "tcp"}},
		{Op: opSvcAdd, Network: "blue", Host: "h1", Svc: &config.Service{Network: "blue", Name: "web", VIP: true}},
		{Op: opVIPUse, Network: "blue", Endpoint: "web", IP: netip.MustParseAddr("10.77.0.2"), Host: "h1"},
		{Op: opVIPDrop, Network: "blue", Endpoint: "web", Host: "h1"},
	} {
		b, _ := json.Marshal(c)
		f.Add(b, b)
	}
	// A block, then a VIP from it: the pair commits a VIP.
	f.Add(mustJSON(command{Op: opTake, Network: "blue", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Bits: 28, Host: "h1", ID: 1}),
		mustJSON(command{Op: opVIPUse, Network: "blue", Endpoint: "web", IP: netip.MustParseAddr("10.77.0.2"), Host: "h1"}))
	f.Add([]byte(`{"op":"take","network":"n","subnet":"0.0.0.0/0","bits":32,"host":"h"}`), []byte(`{`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fs := &fsm{pins: make(map[pinKey]Pin)}
		for i, data := range [][]byte{a, b, a} {
			fs.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		}
		for i, x := range fs.blocks {
			for _, y := range fs.blocks[i+1:] {
				if x.Network == y.Network && x.Prefix.Overlaps(y.Prefix) {
					t.Fatalf("blocks %v and %v overlap", x, y)
				}
			}
		}
		for i, x := range fs.nets {
			if err := config.CheckNetwork(&x.Def); err != nil {
				t.Fatalf("invalid network applied: %v", err)
			}
			for _, y := range fs.nets[i+1:] {
				if x.Def.Name == y.Def.Name || x.Def.VNI == y.Def.VNI || x.Def.Subnet.Overlaps(y.Def.Subnet) {
					t.Fatalf("networks %+v and %+v clash", x.Def, y.Def)
				}
			}
		}
		for i := range fs.pubs {
			if err := config.CheckPublish(&fs.pubs[i].Def); err != nil {
				t.Fatalf("invalid publish applied: %v", err)
			}
			for j := range i {
				if config.PublishClash(&fs.pubs[i].Def, &fs.pubs[j].Def) != nil {
					t.Fatalf("publishes %+v and %+v clash", fs.pubs[i].Def, fs.pubs[j].Def)
				}
			}
		}
		for i := range fs.svcs {
			if err := config.CheckService(&fs.svcs[i].Def); err != nil {
				t.Fatalf("invalid service applied: %v", err)
			}
		}
		for k, c := range fs.claims {
			if k != claimKeyOf(c.Network, c.Name) || config.CheckLabel(c.Name) != nil || c.ID == 0 {
				t.Fatalf("claim %+v under key %+v", c, k)
			}
		}
		// A claim of a name another host holds is refused; replaying the
		// first claim's data as another host must not move the name.
		for _, c := range fs.claims {
			other := "h-other"
			if c.Host == other {
				other = "h-other2"
			}
			r := fs.Apply(&raft.Log{Index: 10, Type: raft.LogCommand, Data: mustJSON(command{Op: opClaim, Network: c.Network, Endpoint: c.Name, Host: other, ID: 1})}).(result)
			if r.Err == "" || r.Holder != c.Host {
				t.Fatalf("a second host's claim of %+v: %+v", c, r)
			}
			break
		}
		checkVIPInvariants(t, fs)
		snap := fs.unlockedEncode()
		back := &fsm{pins: make(map[pinKey]Pin)}
		if err := back.restore(bytes.NewReader(snap)); err != nil {
			t.Fatalf("restore of own snapshot: %v", err)
		}
		if !bytes.Equal(back.unlockedEncode(), snap) {
			t.Fatal("snapshot round trip is not a fixed point")
		}
	})
}

// checkVIPInvariants checks the VIPs of fs: each passes the config rules,
// has sorted distinct users and an address no other VIP of its network
// has; and another host's use of it adopts its address, moving nothing.
func checkVIPInvariants(t *testing.T, fs *fsm) {
	t.Helper()
	for k, v := range fs.vips {
		c := command{Op: opVIPUse, Network: v.Network, Endpoint: v.Service, IP: v.IP, Host: v.Owner}
		if k != (vipKey{v.Network, v.Service}) || c.check() != nil || len(v.Users) == 0 ||
			!slices.IsSorted(v.Users) || len(slices.Compact(slices.Clone(v.Users))) != len(v.Users) {
			t.Fatalf("VIP %+v under key %+v", v, k)
		}
		for o, w := range fs.vips {
			if o != k && w.Network == v.Network && w.IP == v.IP {
				t.Fatalf("VIPs %+v and %+v share an address", v, w)
			}
		}
	}
	for _, v := range fs.vips {
		other := netip.MustParseAddr("192.0.2.7")
		r := fs.Apply(&raft.Log{Index: fs.index + 1, Type: raft.LogCommand, Data: mustJSON(command{Op: opVIPUse, Network: v.Network, Endpoint: v.Service, IP: other, Host: "h-other"})}).(result)
		if r.Err != "" || r.VIP != v.IP || fs.vips[vipKey{v.Network, v.Service}].IP != v.IP {
			t.Fatalf("a second host's use of %+v: %+v", v, r)
		}
		break
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzReplay opens a store whose log file holds arbitrary bytes: it must
// open (cutting what it cannot read) and then accept appends.
func FuzzReplay(f *testing.F) {
	good := appendRecord(nil, opStore, []byte(`{"Index":1,"Term":1,"Type":0,"Data":"eA=="}`))
	f.Add(good)
	f.Add(append(good, good[:5]...))
	f.Add(appendRecord(good, opDelete, make([]byte, 16)))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, logFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := OpenStore(dir)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		last, _ := s.LastIndex()
		if err := s.StoreLog(&raft.Log{Index: last + 1, Term: 1, Data: []byte("x")}); err != nil {
			t.Fatalf("append after replay: %v", err)
		}
		var l raft.Log
		if err := s.GetLog(last+1, &l); err != nil || string(l.Data) != "x" {
			t.Fatalf("read back: %v %q", err, l.Data)
		}
	})
}
