package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/ipam/ipamtest"
	"github.com/vxwire/vxwire/internal/safe"
)

var (
	subnet  = netip.MustParsePrefix("10.77.0.0/29")
	wide    = netip.MustParsePrefix("10.77.0.0/24")
	gateway = netip.MustParseAddr("10.77.0.1")
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func newAllocator(tb testing.TB, store ipam.Store, host string, b ipam.Blocks, r ipam.Records) *ipam.Allocator {
	tb.Helper()
	a, err := ipam.NewAllocator(store, host, b, r, slog.New(slog.DiscardHandler), safe.Reporter{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Close)
	return a
}

func TestBlockBits(t *testing.T) {
	for in, want := range map[string]int{"10.0.0.0/8": 28, "10.0.0.0/24": 28, "10.0.0.0/26": 28, "10.0.0.0/27": 29, "10.0.0.0/29": 30, "10.0.0.0/30": 30, "0.0.0.0/4": 24} {
		if got := ipam.BlockBits(netip.MustParsePrefix(in)); got != want {
			t.Errorf("BlockBits(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestAllocateSequentialAndExhaustion(t *testing.T) {
	a := newAllocator(t, ipamtest.NewStore(), "h1", ipamtest.NewRegistry().Blocks("h1"), nil)
	ctx := context.Background()
	// .0 network, .1 gateway, .7 broadcast: five usable addresses in two
	// blocks of four.
	for i, want := range []string{"10.77.0.2", "10.77.0.3", "10.77.0.4", "10.77.0.5", "10.77.0.6"} {
		got, err := a.Allocate(ctx, "blue", subnet, gateway, string(rune('a'+i)), netip.Addr{})
		if err != nil || got != addr(want) {
			t.Fatalf("allocation %d = %v, %v; want %s", i, got, err, want)
		}
	}
	if _, err := a.Allocate(ctx, "blue", subnet, gateway, "z", netip.Addr{}); !errors.Is(err, ipam.ErrExhausted) {
		t.Fatalf("allocation in a full subnet: %v", err)
	}
	// Other networks are independent.
	if got, err := a.Allocate(ctx, "red", subnet, gateway, "a", netip.Addr{}); err != nil || got != addr("10.77.0.2") {
		t.Fatalf("other network = %v, %v", got, err)
	}
	if err := a.Release("blue", "c"); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Allocate(ctx, "blue", subnet, gateway, "z", netip.Addr{}); err != nil || got != addr("10.77.0.4") {
		t.Fatalf("after release = %v, %v", got, err)
	}
	if err := a.Release("blue", "never"); err != nil {
		t.Fatalf("releasing an unknown endpoint: %v", err)
	}
}

func TestAllocateIdempotent(t *testing.T) {
	a := newAllocator(t, ipamtest.NewStore(), "h1", ipamtest.NewRegistry().Blocks("h1"), nil)
	ctx := context.Background()
	first, err := a.Allocate(ctx, "blue", subnet, gateway, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.Allocate(ctx, "blue", subnet, gateway, "web", netip.Addr{})
	if err != nil || again != first {
		t.Fatalf("second allocation = %v, %v; want %v", again, err, first)
	}
	if _, err := a.Allocate(ctx, "blue", subnet, gateway, "web", addr("10.77.0.5")); err == nil || !strings.Contains(err.Error(), "already has address") {
		t.Fatalf("asking another address for an allocated endpoint: %v", err)
	}
}

func TestExplicitAddress(t *testing.T) {
	reg := ipamtest.NewRegistry()
	recs := ipamtest.NewRecords()
	a := newAllocator(t, ipamtest.NewStore(), "h1", reg.Blocks("h1"), recs)
	b := newAllocator(t, ipamtest.NewStore(), "h2", reg.Blocks("h2"), nil)
	ctx := context.Background()
	if got, err := a.Allocate(ctx, "blue", wide, gateway, "web", addr("10.77.0.10")); err != nil || got != addr("10.77.0.10") {
		t.Fatalf("explicit = %v, %v", got, err)
	}
	// h2 takes the block 10.77.0.0/28 (the pin of .10 is h1's, so it is
	// skipped) and pins .200 explicitly.
	if got, err := b.Allocate(ctx, "blue", wide, gateway, "api", netip.Addr{}); err != nil || got != addr("10.77.0.2") {
		t.Fatalf("h2 any = %v, %v", got, err)
	}
	if _, err := b.Allocate(ctx, "blue", wide, gateway, "db", addr("10.77.0.200")); err != nil {
		t.Fatal(err)
	}
	recs.Hold("blue", addr("10.77.0.20"), "web", "h3")
	tests := []struct {
		name, want, err string
	}{
		{"held here", "10.77.0.10", "address 10.77.0.10 of network blue is in use by web on h1"},
		{"pinned elsewhere", "10.77.0.200", "address 10.77.0.200 of network blue is in use by db on h2"},
		{"another host's block", "10.77.0.3", "address 10.77.0.3 of network blue lies in address block 10.77.0.0/28 of host h2"},
		{"recorded elsewhere", "10.77.0.20", "address 10.77.0.20 of network blue is in use by web on h3"},
		{"gateway", "10.77.0.1", "is the gateway"},
		{"network", "10.77.0.0", "is the network address"},
		{"broadcast", "10.77.0.255", "is the broadcast address"},
		{"outside", "10.78.0.5", "outside subnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Allocate(ctx, "blue", wide, gateway, "other", addr(tc.want))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	// h2's own block is no obstacle for h2, and .10 pinned by h1 inside
	// it is never given by h2.
	if got, err := b.Allocate(ctx, "blue", wide, gateway, "x", addr("10.77.0.5")); err != nil || got != addr("10.77.0.5") {
		t.Fatalf("explicit in its own block = %v, %v", got, err)
	}
	for i := range 12 {
		got, err := b.Allocate(ctx, "blue", wide, gateway, fmt.Sprintf("n%d", i), netip.Addr{})
		if err != nil || got == addr("10.77.0.10") {
			t.Fatalf("h2 allocation %d = %v, %v", i, got, err)
		}
	}
}

func TestBadRequests(t *testing.T) {
	a := newAllocator(t, ipamtest.NewStore(), "h1", ipamtest.NewRegistry().Blocks("h1"), nil)
	ctx := context.Background()
	for _, tc := range []struct {
		network, endpoint string
		subnet            netip.Prefix
		gateway           netip.Addr
	}{
		{"", "web", subnet, gateway},
		{"blue", "", subnet, gateway},
		{"blue", "web", netip.MustParsePrefix("10.77.0.1/29"), gateway},
		{"blue", "web", netip.MustParsePrefix("10.77.0.0/31"), netip.Addr{}},
		{"blue", "web", subnet, addr("10.1.1.1")},
	} {
		if _, err := a.Allocate(ctx, tc.network, tc.subnet, tc.gateway, tc.endpoint, netip.Addr{}); err == nil {
			t.Errorf("Allocate(%+v) accepted", tc)
		}
	}
}

// TestPartition: two hosts cut from each other, each with a block. Each
// keeps allocating inside its own block and never gets the other's
// addresses; the one that needs a new block gets a clear error; after
// healing it gets one, and no address is held twice.
func TestPartition(t *testing.T) {
	reg := ipamtest.NewRegistry()
	h1 := newAllocator(t, ipamtest.NewStore(), "h1", reg.Blocks("h1"), nil)
	h2 := newAllocator(t, ipamtest.NewStore(), "h2", reg.Blocks("h2"), nil)
	ctx := context.Background()
	held := map[netip.Addr]string{}
	take := func(a *ipam.Allocator, host, ep string) error {
		ip, err := a.Allocate(ctx, "blue", wide, gateway, ep, netip.Addr{})
		if err != nil {
			return err
		}
		if o, dup := held[ip]; dup {
			t.Fatalf("%s given to %s and %s/%s", ip, o, host, ep)
		}
		held[ip] = host + "/" + ep
		return nil
	}
	if err := take(h1, "h1", "a0"); err != nil {
		t.Fatal(err)
	}
	if err := take(h2, "h2", "b0"); err != nil {
		t.Fatal(err)
	}
	reg.SetCut("h1", true)
	reg.SetCut("h2", true)
	// h1's block 10.77.0.0/28 has .2 to .15 (14 addresses): a0 and 13 more.
	for i := range 13 {
		if err := take(h1, "h1", fmt.Sprintf("a%d", i+1)); err != nil {
			t.Fatalf("h1 inside its block during the cut: %v", err)
		}
	}
	err := take(h1, "h1", "a14")
	if !errors.Is(err, ipam.ErrNoQuorum) || !strings.Contains(err.Error(), "no quorum: cannot take a new address block; 1 of 2 hosts reachable") {
		t.Fatalf("h1 needing a block during the cut: %v", err)
	}
	if err := take(h2, "h2", "b1"); err != nil {
		t.Fatalf("h2 inside its block during the cut: %v", err)
	}
	reg.SetCut("h1", false)
	reg.SetCut("h2", false)
	if err := take(h1, "h1", "a14"); err != nil {
		t.Fatalf("h1 after healing: %v", err)
	}
}

// TestExplicitWithoutQuorum: an explicit address on a host whose peers are
// not up is honoured at once and recorded in the log once they are.
func TestExplicitWithoutQuorum(t *testing.T) {
	reg := ipamtest.NewRegistry()
	reg.SetCut("h1", true)
	a := newAllocator(t, ipamtest.NewStore(), "h1", reg.Blocks("h1"), nil)
	start := time.Now()
	if got, err := a.Allocate(context.Background(), "blue", wide, gateway, "web", addr("10.77.0.50")); err != nil || got != addr("10.77.0.50") {
		t.Fatalf("explicit without quorum = %v, %v", got, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("explicit without quorum took %v", d)
	}
	reg.SetCut("h1", false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, ok := reg.Blocks("h2").Pinned("blue", addr("10.77.0.50")); ok && p.Host == "h1" && p.Endpoint == "web" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the explicit address was never pinned after healing")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRestoredConflict: an address kept across a restart that the log
// meanwhile gave to another host is reported as a conflict.
func TestRestoredConflict(t *testing.T) {
	reg := ipamtest.NewRegistry()
	store := ipamtest.NewStore()
	if err := store.Save(ipam.Key{Network: "blue", Endpoint: "web"}, addr("10.77.0.3")); err != nil {
		t.Fatal(err)
	}
	b := newAllocator(t, ipamtest.NewStore(), "h2", reg.Blocks("h2"), nil)
	if _, err := b.Allocate(context.Background(), "blue", wide, gateway, "x", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	a := newAllocator(t, store, "h1", reg.Blocks("h1"), nil)
	a.Restore()
	_, err := a.Allocate(context.Background(), "blue", wide, gateway, "web", netip.Addr{})
	var ce *ipam.ConflictError
	if !errors.As(err, &ce) || ce.Host != "h2" {
		t.Fatalf("restored address in h2's block: %v", err)
	}
}

func TestStoreFailures(t *testing.T) {
	reg := ipamtest.NewRegistry()
	store := ipamtest.NewStore()
	a := newAllocator(t, store, "h1", reg.Blocks("h1"), nil)
	ctx := context.Background()
	store.FailWrites = errors.New("disk full")
	if _, err := a.Allocate(ctx, "blue", subnet, gateway, "web", netip.Addr{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("with a failing store: %v", err)
	}
	if _, ok := a.Address("blue", "web"); ok {
		t.Fatal("allocation kept although it was not persisted")
	}
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	reg := ipamtest.NewRegistry()
	open := func() (*ipam.FileStore, *ipam.Allocator) {
		s, err := ipam.NewFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s, newAllocator(t, s, "h1", reg.Blocks("h1"), nil)
	}
	s, a := open()
	web, err := a.Allocate(ctx, "blue", wide, gateway, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := a.Allocate(ctx, "blue", wide, gateway, "db", addr("10.77.0.60"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ipam.NewFileStore(dir); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second store on the same directory: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart: the same keys get the same addresses.
	s, a = open()
	a.Restore()
	for ep, want := range map[string]netip.Addr{"web": web, "db": db} {
		if got, err := a.Allocate(ctx, "blue", wide, gateway, ep, netip.Addr{}); err != nil || got != want {
			t.Fatalf("%s after restart = %v, %v; want %v", ep, got, err, want)
		}
	}
	if err := a.Release("blue", "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, a = open()
	defer s.Close()
	if _, ok := a.Address("blue", "web"); ok {
		t.Fatal("released allocation came back")
	}
	if got, ok := a.Address("blue", "db"); !ok || got != db {
		t.Fatalf("db = %v %v", got, ok)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

func TestFileStoreRejectsMalformed(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":     "{not json",
		"version":     `{"version":2,"allocations":[]}`,
		"unknown":     `{"version":1,"allocations":[],"extra":1}`,
		"bad address": `{"version":1,"allocations":[{"network":"n","endpoint":"e","address":"10.0.0.300"}]}`,
		"duplicate":   `{"version":1,"allocations":[{"network":"n","endpoint":"e","address":"10.0.0.3"},{"network":"n","endpoint":"f","address":"10.0.0.3"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "ipam.json"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err := ipam.NewFileStore(dir); err == nil {
				s.Close()
				t.Fatal("malformed state accepted")
			}
		})
	}
}
