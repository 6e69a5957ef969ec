package tunnel

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// TestAttachInUse attaches container c next to a (10.77.0.10) and b with
// MACs and addresses already in use: each is refused as a conflict, and
// the same request with a free MAC succeeds.
func TestAttachInUse(t *testing.T) {
	e, _ := hotPathEngine(t)
	ns := filepath.Join(t.TempDir(), "c")
	if err := os.WriteFile(ns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	req := func(addr, mac string) api.AttachRequest {
		return api.AttachRequest{Network: "blue", Name: "c", NetNS: ns, Address: addr, MAC: mac}
	}
	for _, tc := range []struct {
		name string
		req  api.AttachRequest
		want string
	}{
		{"mac of another container", req("", macOf("10.77.0.10").String()), `mac 02:76:0a:4d:00:0a is already used by endpoint "a"`},
		{"mac of the gateway", req("", macOf("10.77.0.1").String()), "mac 02:76:0a:4d:00:01 is the gateway's"},
		{"address of the gateway", req("10.77.0.1", ""), "address 10.77.0.1 is the gateway's"},
		{"address of another container", req("10.77.0.11", ""), "10.77.0.11"},
		{"derived mac of an explicit one", req("10.77.0.12", ""), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				// a takes the MAC that 10.77.0.12 derives, as a
				// config file may give it.
				e.mu.Lock()
				e.ports[epKey{"blue", "a"}].mac = macOf("10.77.0.12")
				e.mu.Unlock()
				defer func() {
					e.mu.Lock()
					e.ports[epKey{"blue", "a"}].mac = macOf("10.77.0.10")
					e.mu.Unlock()
				}()
				tc.want = `mac 02:76:0a:4d:00:0c is already used by endpoint "a"`
			}
			_, err := e.Attach(context.Background(), tc.req)
			if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("attach: %v, want a conflict saying %q", err, tc.want)
			}
		})
	}
	ep, err := e.Attach(context.Background(), req("", "02:00:00:00:00:42"))
	if err != nil || ep.MAC != "02:00:00:00:00:42" {
		t.Fatalf("attach with a free MAC: %+v, %v", ep, err)
	}
}

// TestConfigEndpointMACInUse gives a config file endpoint the gateway's
// MAC: the daemon starts anyway, and the endpoint is listed as not
// attached, with an error naming the file and the gateway's MAC.
func TestConfigEndpointMACInUse(t *testing.T) {
	e, _, err := tryHotPathEngine(t, func(c *config.Config) {
		m := macOf("10.77.0.1")
		c.Endpoints[1].MAC = net.HardwareAddr(m[:])
	})
	if err != nil {
		t.Fatalf("start-up failed over one endpoint: %v", err)
	}
	var got *api.Endpoint
	for _, ep := range e.Endpoints() {
		if ep.Name == "b" {
			got = &ep
		}
	}
	if got == nil || !strings.Contains(got.Error, "h1.toml:") || !strings.Contains(got.Error, "is the gateway's") {
		t.Fatalf("endpoint b is %+v, want it listed with FILE:LINE and the gateway's MAC", got)
	}
}
