package consensus

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestVIPClaimAndAdopt is the rule of service VIPs on the state machine:
// the first use of a service commits the proposer's address, a second
// host's use adopts it (its own address is not committed), the last user
// out removes the VIP, and after that the next use commits a new one.
// Beside it, the refusals: an address outside the proposer's blocks, one
// another service holds, a malformed address.
func TestVIPClaimAndAdopt(t *testing.T) {
	a := &applier{f: &fsm{pins: make(map[pinKey]Pin)}}
	subnet := netip.MustParsePrefix("10.77.0.0/24")
	b1 := a.apply(command{Op: opTake, Network: "blue", Subnet: subnet, Bits: 28, Host: "h1", ID: 1}).Block
	b2 := a.apply(command{Op: opTake, Network: "blue", Subnet: subnet, Bits: 28, Host: "h2", ID: 2}).Block
	ip1, ip2 := b1.Addr().Next().Next(), b2.Addr().Next()
	use := func(host, svc string, ip netip.Addr) result {
		return a.apply(command{Op: opVIPUse, Network: "blue", Endpoint: svc, IP: ip, Host: host})
	}
	drop := func(host, svc string) result {
		return a.apply(command{Op: opVIPDrop, Network: "blue", Endpoint: svc, Host: host})
	}

	if r := use("h1", "web", ip1); r.Err != "" || r.VIP != ip1 || r.Holder != "h1" {
		t.Fatalf("first use: %+v", r)
	}
	// h2 allocated its own address before it knew of h1's: it gets h1's.
	if r := use("h2", "web", ip2); r.Err != "" || r.VIP != ip1 || r.Holder != "h1" {
		t.Fatalf("second host's use: %+v, want %s of h1", r, ip1)
	}
	if v, _ := a.f.vip("blue", "web"); v.IP != ip1 || v.Owner != "h1" || !slices.Equal(v.Users, []string{"h1", "h2"}) {
		t.Fatalf("VIP after two uses: %+v", v)
	}
	// A repeated use (a retry) changes nothing.
	if r := use("h2", "web", ip2); r.VIP != ip1 {
		t.Fatalf("repeated use: %+v", r)
	}

	// Refusals.
	if r := use("h1", "db", ip2); r.Err == "" {
		t.Fatalf("h1 committed %s of h2's block: %+v", ip2, r)
	}
	if r := use("h1", "db", ip1); r.Err == "" {
		t.Fatalf("h1 committed %s, web's VIP, for db: %+v", ip1, r)
	}
	if r := use("h1", "db", netip.MustParseAddr("224.0.0.1")); r.Err == "" {
		t.Fatalf("multicast VIP committed: %+v", r)
	}
	if r := use("h1", "db", netip.Addr{}); r.Err == "" {
		t.Fatalf("VIP without an address committed: %+v", r)
	}
	if r := use("h1", "not a label", ip1.Next()); r.Err == "" {
		t.Fatalf("service with a bad name committed: %+v", r)
	}
	// The probe: a fresh address of h1's block for db is accepted.
	if r := use("h1", "db", ip1.Next()); r.Err != "" || r.VIP != ip1.Next() {
		t.Fatalf("db's VIP refused: %+v", r)
	}

	// The owner leaving keeps the VIP while h2 uses it.
	drop("h1", "web")
	if v, ok := a.f.vip("blue", "web"); !ok || v.IP != ip1 || !slices.Equal(v.Users, []string{"h2"}) {
		t.Fatalf("VIP after its owner dropped: %+v %v", v, ok)
	}
	// A drop by a host that is no user changes nothing.
	drop("h3", "web")
	drop("h2", "web")
	if v, ok := a.f.vip("blue", "web"); ok {
		t.Fatalf("VIP left after its last user: %+v", v)
	}
	// Next time the first user's address is committed again.
	if r := use("h2", "web", ip2); r.Err != "" || r.VIP != ip2 || r.Holder != "h2" {
		t.Fatalf("use after release: %+v", r)
	}

	// Snapshot round trip, and a restored replica adopts like the first.
	back := &fsm{pins: make(map[pinKey]Pin)}
	if err := back.restore(bytes.NewReader(a.f.unlockedEncode())); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.vipList(), a.f.vipList()) || len(back.vipList()) != 2 {
		t.Fatalf("restored VIPs %+v, want %+v", back.vipList(), a.f.vipList())
	}
	if r := (&applier{f: back, i: a.i}).apply(command{Op: opVIPUse, Network: "blue", Endpoint: "web", IP: ip1, Host: "h1"}); r.VIP != ip2 {
		t.Fatalf("use on the restored replica: %+v, want %s", r, ip2)
	}

	// Removing the network removes its VIPs.
	a.apply(netCreate(testNet("blue", 300, "10.77.0.0/24"), "h1", 9))
	a.apply(command{Op: opNetRemove, Network: "blue", Host: "h1"})
	if l := a.f.vipList(); len(l) != 0 {
		t.Fatalf("VIPs of a removed network: %+v", l)
	}
}

// TestVIPOlderEntriesApply: entries written before service VIPs existed
// (no "vip" in a result, no VIPs in a snapshot) still apply and restore.
func TestVIPOlderEntriesApply(t *testing.T) {
	f := &fsm{pins: make(map[pinKey]Pin)}
	old := []string{
		`{"op":"svc-add","network":"blue","host":"h1","svc":{"Network":"blue","Name":"web","VIP":true}}`,
		`{"op":"claim","network":"blue","host":"h1","endpoint":"web1","id":3}`,
	}
	for i, e := range old {
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: []byte(e)}).(result); r.Err != "" {
			t.Fatalf("older entry %s refused: %s", e, r.Err)
		}
	}
	if len(f.services()) != 1 {
		t.Fatalf("services after older entries: %+v", f.services())
	}
	back := &fsm{}
	if err := back.restore(bytes.NewReader([]byte(`{"index":2,"blocks":[],"pins":[]}`))); err != nil || len(back.vips) != 0 {
		t.Fatalf("older snapshot: %v, %+v", err, back.vips)
	}
}

// TestVIPRace has two hosts give one service a VIP at the same moment
// through the real log, each from its own block: both end up with the
// same address, the one committed first, and both replicas agree.
func TestVIPRace(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret for the VIP race")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subnet := netip.MustParsePrefix("10.77.0.0/16")
	var own [2]netip.Addr
	for i, n := range nodes {
		b, err := n.Take(ctx, "blue", subnet, 24)
		if err != nil {
			t.Fatal(err)
		}
		own[i] = b.Addr().Next().Next()
	}
	iterations := 10
	if testing.Short() {
		iterations = 3
	}
	for it := range iterations {
		name := []string{"web", "api", "db", "cache", "auth", "mail", "log", "queue", "search", "ui"}[it]
		var wg sync.WaitGroup
		var got [2]netip.Addr
		var errs [2]error
		for j, n := range nodes {
			ip := own[j].Next()
			own[j] = ip
			wg.Go(func() { got[j], errs[j] = n.UseVIP(ctx, "blue", name, ip) })
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("%s: %v; %v", name, errs[0], errs[1])
		}
		if got[0] != got[1] || (got[0] != own[0] && got[0] != own[1]) {
			t.Fatalf("%s: hosts got %s and %s (own %s, %s)", name, got[0], got[1], own[0], own[1])
		}
		for _, n := range nodes {
			waitFor(t, func() bool {
				v, ok := n.ServiceVIP("blue", name)
				return ok && v.IP == got[0] && len(v.Users) == 2
			})
		}
	}
	// The last user out releases it on every replica.
	for _, n := range nodes {
		if err := n.DropVIP(ctx, "blue", "web"); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		waitFor(t, func() bool { _, ok := n.ServiceVIP("blue", "web"); return !ok })
	}
}

// TestVIPForeignAddressRefused: a host proposes, through the real log, a
// VIP at an address of another host's block (say, that host's busiest
// endpoint, to pull its traffic to a service it names): every replica
// refuses it and no VIP is recorded. Beside it, the same host's VIP at
// an address of its own block is accepted.
func TestVIPForeignAddressRefused(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret for the VIP refusal")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subnet := netip.MustParsePrefix("10.77.0.0/24")
	b1, err := nodes[0].Take(ctx, "blue", subnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := nodes[1].Take(ctx, "blue", subnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	victim := b1.Addr().Next().Next()
	_, err = nodes[1].UseVIP(ctx, "blue", "evil", victim)
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("h2's VIP at %s of h1's block: %v, want refused", victim, err)
	}
	if got, err := nodes[1].UseVIP(ctx, "blue", "fine", b2.Addr().Next()); err != nil || got != b2.Addr().Next() {
		t.Fatalf("h2's VIP in its own block: %s, %v", got, err)
	}
	for _, n := range nodes {
		waitFor(t, func() bool { _, ok := n.ServiceVIP("blue", "fine"); return ok })
		if v, ok := n.ServiceVIP("blue", "evil"); ok {
			t.Fatalf("%s recorded the refused VIP %+v", n.cfg.Name, v)
		}
	}
}
