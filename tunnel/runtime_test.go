package tunnel

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
)

// netnsFile makes a file standing for a container's namespace: the engine
// only checks that the path exists, and the fake ports are found by it.
func netnsFile(tb testing.TB, dir, name string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func findNetwork(nets []api.Network, name string) (api.Network, bool) {
	for _, n := range nets {
		if n.Name == name {
			return n, true
		}
	}
	return api.Network{}, false
}

// TestRuntimeNetworkAttachDetach drives network create, attach, detach and
// network rm through the runtime API, checking that each takes effect in
// the switch (ports opened and closed, frames forwarded) and that requests
// that must fail do.
func TestRuntimeNetworkAttachDetach(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := context.Background()
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1, "blue a 10.77.0.10"))

	n, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.90.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if n.VNI != 258 || n.Gateway != "10.90.0.1" || n.Source != "api" || !n.Egress || n.MTU != 1450 {
		t.Fatalf("created %+v; want vni 258 (first free), gateway 10.90.0.1, source api, egress, mtu 1450", n)
	}
	if _, ok := findNetwork(h.e.Networks(), "green"); !ok {
		t.Fatal("green is not listed")
	}
	gw := h.gateway(t, "10.90.0.0/24")
	for _, tc := range []struct {
		spec api.NetworkSpec
		want error
	}{
		{api.NetworkSpec{Name: "green", Subnet: "10.91.0.0/24"}, api.ErrConflict},
		{api.NetworkSpec{Name: "over", Subnet: "10.90.0.128/25"}, api.ErrConflict},
		{api.NetworkSpec{Name: "dup", Subnet: "10.92.0.0/24", VNI: 256}, api.ErrConflict},
		{api.NetworkSpec{Name: "Bad_Name", Subnet: "10.93.0.0/24"}, api.ErrInvalid},
		{api.NetworkSpec{Name: "host", Subnet: "10.94.0.1/24"}, api.ErrInvalid},
	} {
		if _, err := h.e.CreateNetwork(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("CreateNetwork(%+v) = %v, want %v", tc.spec, err, tc.want)
		}
	}

	// Attach two containers, one with an allocated and one with a
	// requested address.
	ns1, ns2 := netnsFile(t, dir, "g1"), netnsFile(t, dir, "g2")
	ep1, err := h.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "g1", NetNS: ns1, ContainerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	ep2, err := h.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "g2", NetNS: ns2, Address: "10.90.0.50", ContainerID: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if ep1.Address != "10.90.0.2/24" || ep2.Address != "10.90.0.50/24" || ep1.Source != "api" || ep1.DNS.Nameservers[0] != "10.90.0.1" {
		t.Fatalf("attached %+v and %+v", ep1, ep2)
	}
	p1, p2 := h.port(t, ns1), h.port(t, ns2)
	m1, m2 := macOf("10.90.0.2"), macOf("10.90.0.50")
	f := frame(m2, m1, "hello")
	p1.Inject(f)
	expectFrame(t, p2, f)
	// Frames for the gateway's MAC reach the gateway port, and its
	// answers reach the container.
	gwMAC := macOf("10.90.0.1")
	toGW := frame(gwMAC, m1, "to-gateway")
	p1.Inject(toGW)
	expectFrame(t, gw.ChannelDevice, toGW)
	fromGW := frame(m1, gwMAC, "from-gateway")
	gw.Inject(fromGW)
	expectFrame(t, p1, fromGW)
	expectNothing(t, p2)

	for _, tc := range []struct {
		req  api.AttachRequest
		want error
	}{
		{api.AttachRequest{Network: "green", Name: "g1", NetNS: ns1}, api.ErrConflict},
		{api.AttachRequest{Network: "green", Name: "g3", NetNS: netnsFile(t, dir, "g3"), Address: "10.90.0.50"}, api.ErrConflict},
		{api.AttachRequest{Network: "nope", Name: "g3", NetNS: ns1}, api.ErrNotFound},
		{api.AttachRequest{Network: "green", Name: "G 3", NetNS: ns1}, api.ErrInvalid},
		{api.AttachRequest{Network: "green", Name: "g3", NetNS: filepath.Join(dir, "missing")}, api.ErrInvalid},
		{api.AttachRequest{Network: "green", Name: "g3", NetNS: ns1, Address: "10.91.0.5"}, api.ErrInvalid},
	} {
		if _, err := h.e.Attach(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("Attach(%+v) = %v, want %v", tc.req, err, tc.want)
		}
	}
	if got := len(h.e.Endpoints()); got != 3 {
		t.Fatalf("%d endpoints after refused attaches, want 3", got)
	}

	// network rm is refused while endpoints are attached.
	if err := h.e.RemoveNetwork(ctx, "green"); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("RemoveNetwork with endpoints = %v, want a conflict", err)
	}
	if err := h.e.RemoveNetwork(ctx, "blue"); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("RemoveNetwork of a config-file network = %v, want invalid", err)
	}
	// Detach by name, then by container id: each closes its port.
	if err := h.e.Detach(ctx, api.DetachRequest{Network: "green", Name: "g1"}); err != nil {
		t.Fatal(err)
	}
	if err := p1.Inject(f); err == nil {
		t.Fatal("g1's port is still open after detach")
	}
	if err := h.e.Detach(ctx, api.DetachRequest{ContainerID: "c2"}); err != nil {
		t.Fatal(err)
	}
	if err := p2.Inject(f); err == nil {
		t.Fatal("g2's port is still open after detach")
	}
	// Detaching again succeeds: runtimes retry.
	if err := h.e.Detach(ctx, api.DetachRequest{ContainerID: "c2"}); err != nil {
		t.Fatal(err)
	}
	// The released address can be had again.
	ep3, err := h.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "g3", NetNS: netnsFile(t, dir, "g3b"), Address: "10.90.0.50"})
	if err != nil || ep3.Address != "10.90.0.50/24" {
		t.Fatalf("re-attaching a released address: %+v, %v", ep3, err)
	}
	if err := h.e.Detach(ctx, api.DetachRequest{Network: "green", Name: "g3"}); err != nil {
		t.Fatal(err)
	}
	if err := h.e.RemoveNetwork(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	if _, ok := findNetwork(h.e.Networks(), "green"); ok {
		t.Fatal("green is still listed after network rm")
	}
	if err := gw.Inject(fromGW); err == nil {
		t.Fatal("green's gateway is still open after network rm")
	}
}

// TestRestartFromStateDir stops an engine and starts a new one on the same
// state_dir: the API network comes back, the endpoint whose namespace
// still exists is re-attached with its address, MAC and container id,
// and the address of the one whose namespace went away meanwhile is
// released.
func TestRestartFromStateDir(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := context.Background()
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	cfg := testConfig(t, dir, 1, 1, "blue a 10.77.0.10")
	h := startFakeHost(t, un, nil, cfg)
	if _, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.90.0.0/24", VNI: 300}); err != nil {
		t.Fatal(err)
	}
	ns1, ns2 := netnsFile(t, dir, "g1"), netnsFile(t, dir, "g2")
	ep1, err := h.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "g1", NetNS: ns1, ContainerID: "c1", MAC: "02:00:00:00:00:01"})
	if err != nil {
		t.Fatal(err)
	}
	ep2, err := h.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "g2", NetNS: ns2, ContainerID: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	h.e.Stop()
	if err := os.Remove(ns2); err != nil { // g2's container went away
		t.Fatal(err)
	}

	h2 := startFakeHost(t, un, nil, cfg)
	n, ok := findNetwork(h2.e.Networks(), "green")
	if !ok || n.VNI != 300 || n.Source != "api" || n.Endpoints != 1 {
		t.Fatalf("after restart green is %+v (listed %v); want vni 300 from the api with 1 endpoint", n, ok)
	}
	eps := h2.e.Endpoints()
	var got *api.Endpoint
	for i := range eps {
		if eps[i].Name == "g1" {
			got = &eps[i]
		}
		if eps[i].Name == "g2" {
			t.Fatalf("g2 was re-attached although its namespace is gone: %+v", eps[i])
		}
	}
	if got == nil || got.Address != ep1.Address || got.MAC != ep1.MAC || got.ContainerID != "c1" || got.Source != "api" {
		t.Fatalf("after restart g1 is %+v, want %+v", got, ep1)
	}
	// The re-attached port forwards: a frame from g1 reaches a container
	// attached after the restart, at g2's released address.
	ns3 := netnsFile(t, dir, "g3")
	ep3, err := h2.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "g3", NetNS: ns3, Address: netip.MustParsePrefix(ep2.Address).Addr().String()})
	if err != nil {
		t.Fatalf("g2's address was not released: %v", err)
	}
	m3 := macOf(netip.MustParsePrefix(ep3.Address).Addr().String())
	f := frame(m3, MAC{2, 0, 0, 0, 0, 1}, "after restart")
	// g1's MAC was chosen, so its IPv4 source is set apart: the port
	// guard passes only g1's own address.
	src := netip.MustParsePrefix(ep1.Address).Addr().As4()
	copy(f[ipv4SrcOff:ipv4SrcOff+4], src[:])
	h2.port(t, ns1).Inject(f)
	expectFrame(t, h2.port(t, ns3), f)
}
