package tunnel

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
)

// TestEndpointRecords checks the per-endpoint records of state_dir: an
// attach writes one, a detach removes it, and a start reads the single
// endpoints.json of an earlier version, re-attaches its endpoints and
// turns it into records.
func TestEndpointRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	cfg := testConfig(t, dir, 1, 1, "blue a 10.77.0.10")
	state := cfg.Host.StateDir
	h := startFakeHost(t, un, nil, cfg)
	ns1, ns2 := netnsFile(t, dir, "b1"), netnsFile(t, dir, "b2")
	ep1, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "b1", NetNS: ns1, ContainerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "b2", NetNS: ns2}); err != nil {
		t.Fatal(err)
	}
	if err := h.e.Detach(ctx, api.DetachRequest{Network: "blue", Name: "b2"}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(state, endpointsDir))
	if len(ents) != 1 || ents[0].Name() != "blue.b1.json" {
		t.Fatalf("records after attaching b1, b2 and detaching b2: %v; want blue.b1.json", ents)
	}
	h.e.Stop()

	// What an earlier version left: every endpoint in one file.
	b, err := os.ReadFile(filepath.Join(state, endpointsDir, "blue.b1.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dynEndpoint
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(state, endpointsDir)); err != nil {
		t.Fatal(err)
	}
	legacy, _ := json.Marshal([]dynEndpoint{d})
	if err := os.WriteFile(filepath.Join(state, legacyEndpointsFile), legacy, 0o600); err != nil {
		t.Fatal(err)
	}
	h2 := startFakeHost(t, un, nil, cfg)
	eps := h2.e.Endpoints()
	found := false
	for _, ep := range eps {
		if ep.Name == "b1" {
			found = ep.Address == ep1.Address && ep.ContainerID == "c1" && ep.Source == "api"
		}
	}
	if !found {
		t.Fatalf("b1 not re-attached from endpoints.json as %+v: %+v", ep1, eps)
	}
	if _, err := os.Stat(filepath.Join(state, legacyEndpointsFile)); !os.IsNotExist(err) {
		t.Fatalf("endpoints.json still there: %v", err)
	}
	if _, err := os.Stat(endpointFile(state, epKey{"blue", "b1"})); err != nil {
		t.Fatalf("no record of b1 after the split: %v", err)
	}
}
