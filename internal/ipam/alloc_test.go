package ipam_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/ipam/ipamtest"
)

var (
	subnet  = netip.MustParsePrefix("10.77.0.0/29")
	gateway = netip.MustParseAddr("10.77.0.1")
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func newAllocator(tb testing.TB, store ipam.Store, host string, c ipam.Claimer) *ipam.Allocator {
	tb.Helper()
	a, err := ipam.NewAllocator(store, host, c, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

func TestAllocateSequentialAndExhaustion(t *testing.T) {
	a := newAllocator(t, ipamtest.NewStore(), "h1", ipamtest.NewRegistry().Claimer("h1"))
	ctx := context.Background()
	// .0 network, .1 gateway, .7 broadcast: five usable addresses.
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
	a := newAllocator(t, ipamtest.NewStore(), "h1", ipamtest.NewRegistry().Claimer("h1"))
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
	a := newAllocator(t, ipamtest.NewStore(), "h1", reg.Claimer("h1"))
	ctx := context.Background()
	wide := netip.MustParsePrefix("10.77.0.0/24")
	if got, err := a.Allocate(ctx, "blue", wide, gateway, "web", addr("10.77.0.10")); err != nil || got != addr("10.77.0.10") {
		t.Fatalf("explicit = %v, %v", got, err)
	}
	reg.Hold("blue", addr("10.77.0.20"), "web", "h2")
	tests := []struct {
		name, want, err string
	}{
		{"held here", "10.77.0.10", "address 10.77.0.10 of network blue is in use by web on h1"},
		{"held elsewhere", "10.77.0.20", "address 10.77.0.20 of network blue is in use by web on h2"},
		{"gateway", "10.77.0.1", "is the gateway"},
		{"network", "10.77.0.0", "is the network address"},
		{"broadcast", "10.77.0.255", "is the broadcast address"},
		{"outside", "10.78.0.5", "outside subnet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Allocate(ctx, "blue", wide, gateway, "db", addr(tc.want))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	_, err := a.Allocate(ctx, "blue", wide, gateway, "db", addr("10.77.0.20"))
	var ce *ipam.ConflictError
	if !errors.As(err, &ce) || ce.Endpoint != "web" || ce.Host != "h2" || ce.Pending {
		t.Fatalf("conflict = %#v", err)
	}
	// Any allocation steps over an address held elsewhere.
	reg.Hold("green", addr("10.77.0.2"), "web", "h2")
	if got, err := a.Allocate(ctx, "green", wide, gateway, "db", netip.Addr{}); err != nil || got != addr("10.77.0.3") {
		t.Fatalf("any next to a remote holder = %v, %v", got, err)
	}
}

func TestBadRequests(t *testing.T) {
	a := newAllocator(t, ipamtest.NewStore(), "h1", ipamtest.NewRegistry().Claimer("h1"))
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

func TestTransientConflicts(t *testing.T) {
	reg := ipamtest.NewRegistry()
	a := newAllocator(t, ipamtest.NewStore(), "h1", reg.Claimer("h1"))
	ctx := context.Background()
	// An explicit address being claimed elsewhere is retried.
	reg.Contend("blue", addr("10.77.0.5"), "db", "h2", 3)
	if got, err := a.Allocate(ctx, "blue", subnet, gateway, "web", addr("10.77.0.5")); err != nil || got != addr("10.77.0.5") {
		t.Fatalf("after transient refusals = %v, %v", got, err)
	}
	// Until the attempts run out.
	reg.Contend("blue", addr("10.77.0.6"), "db", "h2", 1000)
	_, err := a.Allocate(ctx, "blue", subnet, gateway, "api", addr("10.77.0.6"))
	var ce *ipam.ConflictError
	if !errors.As(err, &ce) || !ce.Pending || !strings.Contains(err.Error(), "is being claimed by db on h2") {
		t.Fatalf("persistent contention = %v", err)
	}
	// Any allocation skips a contended address while others are free.
	reg.Contend("blue", addr("10.77.0.2"), "db", "h2", 1)
	if got, err := a.Allocate(ctx, "blue", subnet, gateway, "c", netip.Addr{}); err != nil || got != addr("10.77.0.3") {
		t.Fatalf("any with a contended first address = %v, %v", got, err)
	}
	// And comes back to it when nothing else is left.
	reg.Contend("blue", addr("10.77.0.4"), "db", "h2", 2)
	a.Release("blue", "api")
	reg.Hold("blue", addr("10.77.0.2"), "x", "h3")
	reg.Hold("blue", addr("10.77.0.6"), "x", "h3")
	if got, err := a.Allocate(ctx, "blue", subnet, gateway, "d", netip.Addr{}); err != nil || got != addr("10.77.0.4") {
		t.Fatalf("any with only a contended address = %v, %v", got, err)
	}
}

func TestClaimerAndStoreFailures(t *testing.T) {
	reg := ipamtest.NewRegistry()
	store := ipamtest.NewStore()
	a := newAllocator(t, store, "h1", reg.Claimer("h1"))
	ctx := context.Background()
	reg.Err = ipamtest.ErrUnreachable
	if _, err := a.Allocate(ctx, "blue", subnet, gateway, "web", netip.Addr{}); !errors.Is(err, ipamtest.ErrUnreachable) {
		t.Fatalf("with the cluster unreachable: %v", err)
	}
	reg.Err = nil
	store.FailWrites = errors.New("disk full")
	if _, err := a.Allocate(ctx, "blue", subnet, gateway, "web", netip.Addr{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("with a failing store: %v", err)
	}
	if _, _, ok := reg.Claimer("h2").Lookup("blue", addr("10.77.0.2")); ok {
		t.Fatal("claim kept although the allocation was not persisted")
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
		return s, newAllocator(t, s, "h1", reg.Claimer("h1"))
	}
	s, a := open()
	web, err := a.Allocate(ctx, "blue", subnet, gateway, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := a.Allocate(ctx, "blue", subnet, gateway, "db", addr("10.77.0.6"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ipam.NewFileStore(dir); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second store on the same directory: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A restart with an empty cluster: the same keys get the same
	// addresses, and Restore claims them again.
	reg = ipamtest.NewRegistry()
	s, a = open()
	if err := a.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if ep, host, ok := reg.Claimer("h2").Lookup("blue", db); !ok || ep != "db" || host != "h1" {
		t.Fatalf("restored claim = %s %s %v", ep, host, ok)
	}
	for ep, want := range map[string]netip.Addr{"web": web, "db": db} {
		if got, err := a.Allocate(ctx, "blue", subnet, gateway, ep, netip.Addr{}); err != nil || got != want {
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
