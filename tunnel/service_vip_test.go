package tunnel

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/safe"
)

// TestServiceVIPThroughLog declares VIP services through the engine's API
// side with a log. A service the log already gives a VIP adopts it (and
// this host, its allocator, holds it in its block); a service without one
// gets an address of this host's block, which the engine commits, so the
// log, the API and the snapshot agree. Removing a service takes this host
// off the VIP's users, the VIP leaves the log and the address is
// released.
func TestServiceVIPThroughLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, _ := hotPathEngine(t)
	log := oneVoterLog(t, e.file.Host.Name)
	store, err := ipam.NewFileStore(filepath.Join(t.TempDir(), "ipam"))
	if err != nil {
		t.Fatal(err)
	}
	l := slog.New(slog.DiscardHandler)
	alloc, err := ipam.NewAllocator(store, e.file.Host.Name, log, nil, l, safe.Reporter{L: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(alloc.Close)
	subnet := netip.MustParsePrefix("10.77.0.0/24")
	block, err := log.Take(ctx, "blue", subnet, ipam.BlockBits(subnet))
	if err != nil {
		t.Fatal(err)
	}
	committed := block.Addr().Next().Next().Next()
	if got, err := log.UseVIP(ctx, "blue", "c", committed); err != nil || got != committed {
		t.Fatalf("pre-commit of c's VIP: %s, %v", got, err)
	}
	e.mu.Lock()
	e.blocks, e.alloc = log, alloc
	e.mu.Unlock()

	// c: the log's VIP.
	if _, err := e.AddService(ctx, api.ServiceSpec{Network: "blue", Name: "c"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "c has the log's VIP", func() bool { return serviceAddr(e, "c") == committed.String() })
	if a, ok := alloc.Address("blue", vipEndpoint("c")); !ok || a != committed {
		t.Errorf("this host's IPAM holds %s (%v) for c, want the VIP %s it allocated", a, ok, committed)
	}

	// b: a VIP of this host's block, committed.
	if _, err := e.AddService(ctx, api.ServiceSpec{Network: "blue", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	var vip netip.Addr
	waitUntil(t, "b's VIP committed", func() bool {
		v, ok := log.ServiceVIP("blue", "b")
		vip = v.IP
		return ok && slices.Equal(v.Users, []string{"h1"}) && serviceAddr(e, "b") == v.IP.String()
	})
	if !block.Contains(vip) || vip == committed {
		t.Fatalf("b's VIP %s: want a fresh address of this host's block %s", vip, block)
	}
	snap := e.sw.snap.Load()
	if got := snap.names.fwd["blue"]["b"]; len(got) != 1 || got[0] != vip || snap.byVNI[256].vips[vip.As4()] == nil {
		t.Errorf("snapshot: b resolves to %v, switch VIPs %v; want %s", got, snap.byVNI[256].vips, vip)
	}

	// Removal: off the log, and released.
	if err := e.RemoveService(ctx, api.ServiceRef{Network: "blue", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "b's VIP released", func() bool {
		_, inLog := log.ServiceVIP("blue", "b")
		_, held := alloc.Address("blue", vipEndpoint("b"))
		return !inLog && !held
	})
	if _, ok := log.ServiceVIP("blue", "c"); !ok {
		t.Error("c's VIP went with b's")
	}
}

// serviceAddr returns the address e lists for service name.
func serviceAddr(e *Engine, name string) string {
	for _, s := range e.Services() {
		if s.Name == name {
			return s.Address
		}
	}
	return ""
}

// waitUntil polls cond until it holds, for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}
