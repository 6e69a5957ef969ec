package tunnel

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
)

// TestReserveAndAttachReserved checks the path Docker's IPAM driver takes:
// a reserved address is refused to anyone else, handed to the endpoint
// that names the reservation, and released with it; handoff endpoints
// get no namespace identity and no default route of their own; aliases
// change in place.
func TestReserveAndAttachReserved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1))
	a, err := h.e.ReserveAddress(ctx, "blue", "docker-ipam-x-1", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	other := netnsFile(t, dir, "other")
	if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "thief", NetNS: other, Address: a.String()}); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("attaching another endpoint at the reserved %s: %v, want a conflict", a, err)
	}
	if _, err := h.e.ReserveAddress(ctx, "nope", "k", netip.Addr{}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("reserving on an unknown network: %v", err)
	}
	req := api.AttachRequest{Network: "blue", Name: "web", Address: a.String(), IfName: "vxwabc", Handoff: true, ContainerID: "ep1"}
	ep, err := h.e.AttachReserved(ctx, req, "docker-ipam-x-1")
	if err != nil {
		t.Fatal(err)
	}
	if ep.Address != netip.PrefixFrom(a, 24).String() || ep.NetNS != selfNetNS || ep.DefaultRoute {
		t.Fatalf("attached %+v: want %s in the daemon's namespace, no default route of its own", ep, a)
	}
	if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "x", NetNS: other, Handoff: true, IfName: "vxwdef"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("handoff with a netns: %v, want invalid", err)
	}
	if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "x", Handoff: true, IfName: "eth9"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("handoff named eth9 in the host's namespace: %v, want invalid", err)
	}
	if err := h.e.SetAliases(ctx, "blue", "web", []string{"www", "api"}); err != nil {
		t.Fatal(err)
	}
	if got := (names{&h.e.sw.snap}).Lookup("blue", "www"); !slices.Equal(got, []netip.Addr{a}) {
		t.Errorf("www resolves to %v, want %s", got, a)
	}
	if err := h.e.SetAliases(ctx, "blue", "web", []string{"Bad_Alias"}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("a bad alias: %v", err)
	}
	if err := h.e.SetAliases(ctx, "blue", "nobody", nil); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("aliases of a missing endpoint: %v", err)
	}
	if err := h.e.Detach(ctx, api.DetachRequest{ContainerID: "ep1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "next", NetNS: other, Address: a.String()}); err != nil {
		t.Errorf("%s after the Docker endpoint left: %v, want it free", a, err)
	}
}
