package tunnel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// TestServiceThroughRuntime declares a service through the engine's API
// side, without a log: its VIP comes from the network's addresses, the
// snapshot resolves the name to it and tasks.NAME to the endpoint, proxy
// ARP knows it and the switch has it; a second declaration is refused;
// removal gives everything back.
func TestServiceThroughRuntime(t *testing.T) {
	e, _ := hotPathEngine(t)
	ctx := context.Background()
	sv, err := e.AddService(ctx, api.ServiceSpec{Network: "blue", Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	vip, err := netip.ParseAddr(sv.Address)
	if err != nil || !netip.MustParsePrefix("10.77.0.0/24").Contains(vip) || vip.String() == "10.77.0.11" {
		t.Fatalf("service address %q (%v)", sv.Address, err)
	}
	snap := e.sw.snap.Load()
	if got := snap.names.fwd["blue"]["b"]; len(got) != 1 || got[0] != vip {
		t.Errorf("b resolves to %v, want the VIP %s", got, vip)
	}
	if got := snap.names.fwd["blue"]["tasks.b"]; len(got) != 1 || got[0].String() != "10.77.0.11" {
		t.Errorf("tasks.b resolves to %v, want 10.77.0.11", got)
	}
	nv := snap.byVNI[256]
	if svc := nv.vips[vip.As4()]; svc == nil || len(svc.backends) != 1 || nv.neigh[vip] != deriveMAC(vip) {
		t.Errorf("switch view of the VIP: %+v, neigh %v", svc, nv.neigh[vip])
	}
	if _, err := e.AddService(ctx, api.ServiceSpec{Network: "blue", Name: "b"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("second declaration: %v, want a conflict", err)
	}
	if _, err := e.AddService(ctx, api.ServiceSpec{Network: "pink", Name: "b"}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown network: %v, want not found", err)
	}
	if _, err := e.AddService(ctx, api.ServiceSpec{Network: "blue", Name: "B_"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("bad name: %v, want invalid", err)
	}
	if err := e.RemoveService(ctx, api.ServiceRef{Network: "blue", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	snap = e.sw.snap.Load()
	if got := snap.names.fwd["blue"]["b"]; len(got) != 1 || got[0].String() != "10.77.0.11" || snap.byVNI[256].vips != nil {
		t.Errorf("after removal b resolves to %v, vips %v", got, snap.byVNI[256].vips)
	}
	if len(e.vips) != 0 || len(e.Services()) != 0 {
		t.Errorf("after removal: vips %v, services %+v", e.vips, e.Services())
	}
}

// TestPublishThroughRuntime publishes a port through the engine's API side
// on a loopback address, in host mode to a local endpoint: the port
// listens; publishing it again, or a port already bound, is refused;
// removal closes it.
func TestPublishThroughRuntime(t *testing.T) {
	e, _ := hotPathEngine(t)
	ctx := context.Background()
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(free.Addr().(*net.TCPAddr).Port)
	free.Close()
	spec := api.PublishSpec{Network: "blue", Port: port, To: "b:80", Listen: "127.0.0.1"}
	if _, err := e.AddPublish(ctx, spec); err != nil {
		t.Fatal(err)
	}
	ps := e.Publishes()
	if len(ps) != 1 || ps[0].Address != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String() || ps[0].Targets != 1 {
		t.Fatalf("publishes: %+v", ps)
	}
	if st := e.Status().Publishes; !reflect.DeepEqual(st, ps) {
		t.Errorf("status carries publishes %+v, want %+v", st, ps)
	}
	if _, err := e.AddPublish(ctx, spec); !errors.Is(err, api.ErrConflict) {
		t.Errorf("publishing twice: %v, want a conflict", err)
	}
	inUse := api.PublishSpec{Network: "blue", Port: uint16(busy.Addr().(*net.TCPAddr).Port), To: "b:80", Listen: "127.0.0.1"}
	if _, err := e.AddPublish(ctx, inUse); !errors.Is(err, api.ErrConflict) {
		t.Errorf("publishing a bound port: %v, want a conflict", err)
	}
	if err := e.RemovePublish(ctx, api.PublishRef{Port: port, Listen: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if c, err := net.Listen("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String()); err != nil {
		t.Errorf("the port is still bound after removal: %v", err)
	} else {
		c.Close()
	}
	if err := e.RemovePublish(ctx, api.PublishRef{Port: port, Listen: "127.0.0.1"}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("removing twice: %v, want not found", err)
	}
}
