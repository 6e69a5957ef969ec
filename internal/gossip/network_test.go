package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func netDef(name string, vni uint32, subnet string) NetworkDef {
	p := netip.MustParsePrefix(subnet)
	return NetworkDef{Name: name, VNI: vni, Subnet: p, Gateway: p.Addr().Next(), MTU: 1450, Egress: true}
}

func netList(c *Cluster) []string {
	var out []string
	for _, d := range c.Networks() {
		out = append(out, fmt.Sprintf("%s:%d", d.Name, d.VNI))
	}
	return out
}

func hasNets(c *Cluster, want ...string) bool { return slices.Equal(netList(c), want) }

func waitNets(tb testing.TB, cs []*Cluster, want ...string) {
	tb.Helper()
	for _, c := range cs {
		eventually(tb, 5*time.Second, func() bool { return hasNets(c, want...) },
			"%s: networks %v, want %v", c.cfg.NodeName, netList(c), want)
	}
}

func netEntryOf(c *Cluster, name string) (netEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.nets.entries[name]
	return e, ok
}

func closeAll(tb testing.TB, cs ...*Cluster) {
	tb.Helper()
	for _, c := range cs {
		if err := c.Close(); err != nil {
			tb.Fatal(err)
		}
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func TestNetworkReplicateUpdateDelete(t *testing.T) {
	defer goleak.VerifyNone(t)
	cs := newTestTrio(t)
	drain(cs[1].Changes())
	blue := netDef("blue", 300, "10.80.0.0/24")
	blue.Encrypted = true
	if err := cs[0].PutNetwork(blue); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs, "blue:300")
	select {
	case <-cs[1].Changes():
	default:
		t.Fatal("no change signal for a replicated network")
	}
	if got := cs[2].Networks()[0]; got != blue {
		t.Fatalf("replicated definition = %+v, want %+v", got, blue)
	}
	if err := cs[0].PutNetwork(blue); err != nil {
		t.Fatalf("putting the same definition again: %v", err)
	}

	// An update from another host replaces it everywhere.
	blue.MTU = 1400
	if err := cs[2].PutNetwork(blue); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		eventually(t, 5*time.Second, func() bool {
			ns := c.Networks()
			return len(ns) == 1 && ns[0] == blue
		}, "%s: update not replicated: %+v", c.cfg.NodeName, c.Networks())
	}

	// Another name with the same VNI or an overlapping subnet is refused,
	// naming the holder.
	err := cs[1].PutNetwork(netDef("green", 300, "10.81.0.0/24"))
	var ce *NetworkConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrNetworkConflict) || ce.Holder != "blue" || ce.Host != "h1" || ce.VNI != 300 {
		t.Fatalf("put with a used vni: %v", err)
	}
	if want := "network green: vni 300 is already used by network blue (created on h1)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	err = cs[1].PutNetwork(netDef("green", 301, "10.80.0.128/25"))
	if !errors.As(err, &ce) || ce.Holder != "blue" || ce.VNI != 0 || ce.Subnet != blue.Subnet {
		t.Fatalf("put with an overlapping subnet: %v", err)
	}
	if err := cs[1].PutNetwork(netDef("green", 301, "10.81.0.0/24")); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs, "blue:300", "green:301")

	// A delete on another host than the creator removes it everywhere.
	drain(cs[0].Changes())
	if err := cs[1].DeleteNetwork("blue"); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs, "green:301")
	select {
	case <-cs[0].Changes():
	default:
		t.Fatal("no change signal for a deleted network")
	}
	if err := cs[2].DeleteNetwork("blue"); !errors.Is(err, ErrUnknownNetwork) {
		t.Fatalf("deleting a deleted network: %v", err)
	}
	// The VNI and subnet are free again.
	if err := cs[2].PutNetwork(netDef("blue2", 300, "10.80.0.0/24")); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs, "blue2:300", "green:301")
	closeAll(t, cs...)
}

func TestNetworkOutlivesCreatorAndReachesLateJoiner(t *testing.T) {
	defer goleak.VerifyNone(t)
	cs := newTestTrio(t)
	if err := cs[1].PutNetwork(netDef("blue", 300, "10.80.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := cs[1].PutNetwork(netDef("red", 301, "10.81.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := cs[1].DeleteNetwork("red"); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs, "blue:300")

	// The creator leaves; a failed host would not matter either.
	if err := cs[1].Close(); err != nil {
		t.Fatal(err)
	}
	crash(cs[2])
	eventually(t, 5*time.Second, func() bool { return cs[0].numLive.Load() == 1 }, "departures not seen")
	if !hasNets(cs[0], "blue:300") {
		t.Fatalf("definition gone with its creator: %v", netList(cs[0]))
	}

	// A host joining later learns the definition and the tombstone by
	// push/pull, with no write after it joined.
	late := newTestCluster(t, "h4", []netip.AddrPort{cs[0].Addr()})
	waitNets(t, []*Cluster{late}, "blue:300")
	if e, ok := netEntryOf(late, "red"); !ok || !e.Deleted {
		t.Fatalf("late joiner lacks the tombstone of red: %+v", e)
	}
	closeAll(t, late, cs[0])
}

func TestNetworkConcurrentCreatesConverge(t *testing.T) {
	defer goleak.VerifyNone(t)
	cs := newTestTrio(t)
	for round := range 5 {
		name := fmt.Sprintf("net%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j := range 2 {
			d := netDef(name, uint32(1000+10*round+j), fmt.Sprintf("10.%d.%d.0/24", 90+j, round))
			wg.Go(func() { errs[j] = cs[j].PutNetwork(d) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		var want netEntry
		eventually(t, 5*time.Second, func() bool {
			want, _ = netEntryOf(cs[0], name)
			for _, c := range cs[1:] {
				if e, _ := netEntryOf(c, name); e != want {
					return false
				}
			}
			return true
		}, "round %d: hosts disagree on %s", round, name)
		t.Logf("round %d: %s won with version %+v", round, want.Def.Subnet, want.Version)
	}

	// Clashing definitions under different names: whatever the race did,
	// every host ends up showing the same single one.
	var wg sync.WaitGroup
	for j, name := range []string{"x", "y"} {
		d := netDef(name, 5000, fmt.Sprintf("10.100.%d.0/24", j))
		wg.Go(func() { _ = cs[j].PutNetwork(d) })
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	var first []string
	eventually(t, 5*time.Second, func() bool {
		first = netList(cs[0])
		return hasNets(cs[1], first...) && hasNets(cs[2], first...)
	}, "hosts disagree after a clash: %v %v %v", netList(cs[0]), netList(cs[1]), netList(cs[2]))
	n := 0
	for _, s := range first {
		if s == "x:5000" || s == "y:5000" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("after a clash hosts show %v", first)
	}
	closeAll(t, cs...)
}

func TestNetworkTombstoneBeatsStaleDefinition(t *testing.T) {
	defer goleak.VerifyNone(t)
	cs := newTestTrio(t)
	if err := cs[2].PutNetwork(netDef("blue", 300, "10.80.0.0/24")); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs, "blue:300")
	stale, _ := netEntryOf(cs[2], "blue")
	saved := cs[2].NetworkState()
	port := cs[2].Addr().Port()
	crash(cs[2])
	eventually(t, 5*time.Second, func() bool { return cs[0].numLive.Load() == 2 }, "crash not seen")

	if err := cs[0].DeleteNetwork("blue"); err != nil {
		t.Fatal(err)
	}
	waitNets(t, cs[:2], []string{}...)

	// A stale copy arriving by gossip or push/pull is not taken back.
	(*delegate)(cs[1]).NotifyMsg(encode(nil, &message{Type: msgNets, Nets: []netEntry{stale}}))
	(*delegate)(cs[1]).MergeRemoteState(encode(nil, &message{Type: msgSync, Nets: []netEntry{stale}}), false)
	if len(cs[1].Networks()) != 0 {
		t.Fatalf("stale definition resurrected: %v", netList(cs[1]))
	}

	// The host that was down comes back with its saved state, which still
	// has the definition: the tombstone wins there too.
	h3 := newTestCluster(t, "h3", []netip.AddrPort{cs[0].Addr()}, func(c *Config) { c.Port = int(port) })
	if err := h3.LoadNetworkState(saved); err != nil {
		t.Fatal(err)
	}
	waitNets(t, []*Cluster{h3, cs[0], cs[1]}, []string{}...)
	if e, _ := netEntryOf(h3, "blue"); !e.Deleted {
		t.Fatalf("restarted host has %+v", e)
	}
	closeAll(t, h3, cs[0], cs[1])
}

func TestNetworkStateRoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t)
	a := newTestCluster(t, "a", nil)
	for _, d := range []NetworkDef{netDef("blue", 300, "10.80.0.0/24"), netDef("red", 301, "10.81.0.0/24"), {Name: "bare", VNI: 302, Subnet: netip.MustParsePrefix("10.82.0.0/16"), Gateway: netip.MustParseAddr("10.82.0.1")}} {
		if err := a.PutNetwork(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.DeleteNetwork("red"); err != nil {
		t.Fatal(err)
	}
	oldRed, _ := netEntryOf(a, "red")
	st := a.NetworkState()

	// A restarted host, alone, knows its networks again.
	b := newTestCluster(t, "b", nil)
	drain(b.Changes())
	if err := b.LoadNetworkState(st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(b.Networks(), a.Networks()) || len(b.Networks()) != 2 {
		t.Fatalf("loaded %+v, want %+v", b.Networks(), a.Networks())
	}
	select {
	case <-b.Changes():
	default:
		t.Fatal("no change signal on load")
	}
	if got := b.NetworkState(); !bytes.Equal(got, st) {
		t.Fatalf("state not preserved:\n got %x\nwant %x", got, st)
	}
	// Loading again changes nothing.
	if err := b.LoadNetworkState(st); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Changes():
		t.Fatal("change signal for an unchanged load")
	default:
	}
	// The tombstone and the clock came back: a stale definition stays
	// dead, and the next write outranks every loaded one.
	b.mu.Lock()
	b.unlockedApplyNets([]netEntry{{Def: netDef("red", 301, "10.81.0.0/24"), Version: netVersion{1, "a"}, Created: netVersion{1, "a"}}}, false)
	b.mu.Unlock()
	if len(b.Networks()) != 2 {
		t.Fatalf("stale definition taken after load: %v", netList(b))
	}
	if err := b.PutNetwork(netDef("red", 303, "10.83.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if e, _ := netEntryOf(b, "red"); e.Version.compare(oldRed.Version) <= 0 {
		t.Fatalf("new write %+v does not outrank tombstone %+v", e.Version, oldRed.Version)
	}
	// An old state does not undo newer writes.
	if err := b.LoadNetworkState(st); err != nil {
		t.Fatal(err)
	}
	if !hasNets(b, "bare:302", "blue:300", "red:303") {
		t.Fatalf("old state undid a newer write: %v", netList(b))
	}

	for _, bad := range [][]byte{nil, []byte("vxwn"), append([]byte("vxwn"), 2), st[:len(st)-1], append(slices.Clone(st), 0)} {
		if err := b.LoadNetworkState(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("LoadNetworkState(%x) = %v, want ErrMalformed", bad, err)
		}
	}
	invalid := encodeNetState(1, []netEntry{{Def: NetworkDef{Name: "x"}, Version: netVersion{1, "a"}, Created: netVersion{1, "a"}}})
	if err := b.LoadNetworkState(invalid); !errors.Is(err, ErrInvalidNetwork) {
		t.Errorf("loading an invalid entry: %v", err)
	}
	closeAll(t, a, b)
	if err := b.LoadNetworkState(st); !errors.Is(err, ErrClosed) {
		t.Errorf("load after Close: %v", err)
	}
}

func TestPutNetworkErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := newTestCluster(t, "solo", nil)
	good := netDef("blue", 300, "10.80.0.0/24")
	for _, mod := range []func(*NetworkDef){
		func(d *NetworkDef) { d.Name = "" },
		func(d *NetworkDef) { d.Name = string(make([]byte, maxString+1)) },
		func(d *NetworkDef) { d.VNI = 0 },
		func(d *NetworkDef) { d.VNI = 1 << 24 },
		func(d *NetworkDef) { d.Subnet = netip.Prefix{} },
		func(d *NetworkDef) { d.Gateway = netip.MustParseAddr("10.0.0.1") },
		func(d *NetworkDef) { d.MTU = -1 },
		func(d *NetworkDef) { d.MTU = 70000 },
	} {
		d := good
		mod(&d)
		if err := c.PutNetwork(d); !errors.Is(err, ErrInvalidNetwork) {
			t.Errorf("PutNetwork(%+v) = %v", d, err)
		}
	}
	if err := c.DeleteNetwork(""); !errors.Is(err, ErrInvalidNetwork) {
		t.Errorf("DeleteNetwork(\"\") = %v", err)
	}
	if err := c.DeleteNetwork("nope"); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("DeleteNetwork(nope) = %v", err)
	}
	closeAll(t, c)
	if err := c.PutNetwork(good); !errors.Is(err, ErrClosed) {
		t.Errorf("PutNetwork after Close = %v", err)
	}
	if err := c.DeleteNetwork("blue"); !errors.Is(err, ErrClosed) {
		t.Errorf("DeleteNetwork after Close = %v", err)
	}
}

// TestNetTableOrder checks that every order of arrival gives every host
// the same entry, including writes that share a version.
func TestNetTableOrder(t *testing.T) {
	d1, d2 := netDef("n", 300, "10.80.0.0/24"), netDef("n", 301, "10.81.0.0/24")
	v := func(clock uint64, origin string) netVersion { return netVersion{clock, origin} }
	es := []netEntry{
		{Def: d1, Version: v(1, "h1"), Created: v(1, "h1")},
		{Def: d2, Version: v(1, "h2"), Created: v(1, "h2")},
		{Def: d1, Version: v(2, "h1"), Created: v(1, "h1")},
		{Def: NetworkDef{Name: "n"}, Version: v(3, "h1"), Deleted: true},
		{Def: d2, Version: v(3, "h1"), Created: v(3, "h1")}, // reused version
		{Def: d1, Version: v(3, "h1"), Created: v(3, "h1")}, // reused version
	}
	var want netEntry
	for i, perm := range permutations(len(es)) {
		tab := newNetTable()
		for _, j := range perm {
			tab.apply(es[j])
		}
		got := tab.entries["n"]
		if i == 0 {
			want = got
		} else if got != want {
			t.Fatalf("order %v gives %+v, order 0 gives %+v", perm, got, want)
		}
		if tab.clock != 3 {
			t.Fatalf("clock %d", tab.clock)
		}
	}
	if !want.Deleted {
		t.Fatalf("tombstone lost to a definition of the same version: %+v", want)
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	return out
}

func TestNetTableShadow(t *testing.T) {
	tab := newNetTable()
	var hidden []string
	tab.onShadow = func(name, holder string) { hidden = append(hidden, name+"<"+holder) }
	x := netEntry{Def: netDef("x", 300, "10.80.0.0/24"), Version: netVersion{5, "h1"}, Created: netVersion{5, "h1"}}
	y := netEntry{Def: netDef("y", 300, "10.81.0.0/24"), Version: netVersion{5, "h2"}, Created: netVersion{5, "h2"}}
	z := netEntry{Def: netDef("z", 302, "10.80.0.0/16"), Version: netVersion{7, "h3"}, Created: netVersion{7, "h3"}}
	for _, e := range []netEntry{z, y, x} {
		tab.apply(e)
	}
	names := func() (out []string) {
		for _, d := range tab.visible() {
			out = append(out, d.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("visible %v, want [x]", got)
	}
	if !slices.Equal(hidden, []string{"y<x", "z<x"}) {
		t.Fatalf("warnings %v", hidden)
	}
	// An update of x keeps its creation version, so x still wins.
	x.Def.MTU, x.Version = 1400, netVersion{9, "h2"}
	tab.apply(x)
	if got := names(); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("after update: visible %v", got)
	}
	if len(hidden) != 2 {
		t.Fatalf("warned again: %v", hidden)
	}
	if err := tab.conflict(&y.Def); err == nil {
		t.Fatal("conflict not reported for a hidden definition")
	}
	// Deleting x shows the ones it hid, which do not clash with each
	// other.
	tab.apply(netEntry{Def: NetworkDef{Name: "x"}, Version: netVersion{10, "h1"}, Deleted: true})
	if got := names(); !slices.Equal(got, []string{"y", "z"}) {
		t.Fatalf("after delete: visible %v", got)
	}
}

func TestNetTableEvictsOldestTombstones(t *testing.T) {
	tab := newNetTable()
	tomb := func(i int) netEntry {
		return netEntry{Def: NetworkDef{Name: fmt.Sprintf("n%05d", i)}, Version: netVersion{uint64(i + 1), "h"}, Deleted: true}
	}
	for i := range maxTombstones + 1 {
		if !tab.apply(tomb(i)) {
			t.Fatalf("tombstone %d not taken", i)
		}
	}
	if tab.tombs != maxTombstones*7/8 || len(tab.entries) != tab.tombs {
		t.Fatalf("%d tombstones, %d entries after eviction", tab.tombs, len(tab.entries))
	}
	if _, ok := tab.entries["n00000"]; ok {
		t.Fatal("oldest tombstone kept")
	}
	if _, ok := tab.entries[tomb(maxTombstones).Def.Name]; !ok {
		t.Fatal("newest tombstone forgotten")
	}
	// A forgotten tombstone coming back is not taken, so it is not
	// gossiped on forever.
	if tab.apply(tomb(0)) {
		t.Fatal("forgotten tombstone taken again")
	}
	// But it still deletes a definition older than itself.
	live := netEntry{Def: netDef("n00001", 300, "10.80.0.0/24"), Version: netVersion{1, "a"}, Created: netVersion{1, "a"}}
	tab.apply(live)
	if len(tab.visible()) != 1 {
		t.Fatal("definition not taken")
	}
	if !tab.apply(tomb(1)) || len(tab.visible()) != 0 {
		t.Fatal("old tombstone did not delete an older definition")
	}
}
