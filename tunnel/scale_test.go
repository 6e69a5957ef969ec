package tunnel

import (
	"context"
	"fmt"
	"testing"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
)

// scaleEndpoints is how many endpoints BenchmarkAttachAtScale attaches
// before it measures: the 4096 containers on one host.
const scaleEndpoints = 4096

// BenchmarkAttachAtScale measures one attach and its detach through the
// API on a host that already has scaleEndpoints endpoints on one network:
// what the last container of a full host waits for. Work that grows with
// the endpoints already there shows here, not in an attach to an empty
// host. Run it with -benchmem: the allocations of one attach and detach
// pair should not grow with scaleEndpoints either.
func BenchmarkAttachAtScale(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	h := startFakeHost(b, encaptest.NewNetwork(), nil, testConfig(b, dir, 1, 1))
	if _, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "big", Subnet: "10.96.0.0/16"}); err != nil {
		b.Fatal(err)
	}
	for i := range scaleEndpoints {
		name := fmt.Sprintf("c%d", i)
		if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "big", Name: name, NetNS: netnsFile(b, dir, name)}); err != nil {
			b.Fatalf("attach %s: %v", name, err)
		}
	}
	ns := netnsFile(b, dir, "last")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "big", Name: "last", NetNS: ns}); err != nil {
			b.Fatal(err)
		}
		if err := h.e.Detach(ctx, api.DetachRequest{Network: "big", Name: "last"}); err != nil {
			b.Fatal(err)
		}
	}
}
