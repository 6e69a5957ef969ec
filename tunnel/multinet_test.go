package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/tunnel/tap"
	"github.com/vxwire/vxwire/tunnel/tap/taptest"
)

// TestSeveralNetworksOneNamespace attaches one container to blue, then to
// green: eth0 keeps the default route and eth1 gets none (before this
// change the second TAP asked for a second default route, which the
// kernel refuses with "file exists"); blue's resolver answers green's
// names to this container only; detaching blue hands resolv.conf duty to
// green.
func TestSeveralNetworksOneNamespace(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	var opened []tap.Config
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1), func(o *Options) {
		next := o.OpenPort
		o.OpenPort = func(c tap.Config, l *slog.Logger) (tap.Device, error) {
			mu.Lock()
			opened = append(opened, c)
			mu.Unlock()
			if next == nil {
				return taptest.NewChannelDevice(c.MTU, 64, 256), nil
			}
			return next(c, l)
		}
	})
	if _, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.90.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	ns := netnsFile(t, dir, "c1")
	other := netnsFile(t, dir, "c2")
	eth0, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "web", NetNS: ns, ContainerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	eth1, err := h.e.Attach(ctx, api.AttachRequest{Network: "green", Name: "web", NetNS: ns, IfName: "eth1", ContainerID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	lone, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "lone", NetNS: other, ContainerID: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(opened)
	mu.Unlock()
	if len(got) != 3 || !got[0].Gateway.IsValid() || got[1].Gateway.IsValid() || !got[2].Gateway.IsValid() {
		t.Fatalf("tap configs %+v: want a default route on eth0 of c1 and of c2, none on eth1 of c1", got)
	}
	if !eth0.DefaultRoute || eth1.DefaultRoute || !lone.DefaultRoute {
		t.Errorf("default_route: eth0 %v eth1 %v lone %v", eth0.DefaultRoute, eth1.DefaultRoute, lone.DefaultRoute)
	}
	if eth1.DNS.Nameservers[0] != "10.77.0.1" || !slices.Equal(eth1.DNS.Search, []string{"blue", "green"}) {
		t.Errorf("dns of eth1 %+v: want blue's gateway, search blue green", eth1.DNS)
	}
	nm := names{&h.e.sw.snap}
	a0 := netip.MustParsePrefix(eth0.Address).Addr()
	al := netip.MustParsePrefix(lone.Address).Addr()
	if !nm.Shares("blue", a0, "green") || nm.Shares("blue", al, "green") || nm.Shares("blue", a0, "red") {
		t.Errorf("shares: c1 on blue→green %v, lone on blue→green %v, c1→red %v; want true, false, false",
			nm.Shares("blue", a0, "green"), nm.Shares("blue", al, "green"), nm.Shares("blue", a0, "red"))
	}

	if err := h.e.Detach(ctx, api.DetachRequest{Network: "blue", ContainerID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for _, ep := range h.e.Endpoints() {
		if ep.Network == "green" && ep.Name == "web" && (ep.DNS.Nameservers[0] != "10.90.0.1" || !slices.Equal(ep.DNS.Search, []string{"green"})) {
			t.Errorf("after blue left: dns %+v, want green's gateway only", ep.DNS)
		}
	}
	if nm.Shares("blue", a0, "green") {
		t.Error("c1 still shares green through blue after leaving blue")
	}
}

// TestConfigAttachFailureKeepsDaemon checks that a config file endpoint
// whose TAP cannot be made leaves the engine running with the others
// attached, and is listed with its error (before this change New failed,
// so one bad endpoint kept the whole host off the overlay).
func TestConfigAttachFailureKeepsDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, 1, 1, "blue good 10.77.0.10", "blue bad 10.77.0.11")
	h := startFakeHost(t, encaptest.NewNetwork(), nil, cfg, func(o *Options) {
		next := o.OpenPort
		o.OpenPort = func(c tap.Config, l *slog.Logger) (tap.Device, error) {
			if c.Addr.Addr() == netip.MustParseAddr("10.77.0.11") {
				return nil, errors.New("cannot add default route via 10.77.0.1: file exists")
			}
			return next(c, l)
		}
	})
	var good, bad api.Endpoint
	for _, ep := range h.e.Endpoints() {
		switch ep.Name {
		case "good":
			good = ep
		case "bad":
			bad = ep
		}
	}
	if good.Address != "10.77.0.10/24" || good.Error != "" {
		t.Errorf("good endpoint %+v, want attached", good)
	}
	if !strings.Contains(bad.Error, "h1.toml") || !strings.Contains(bad.Error, "file exists") || bad.Address != "" {
		t.Errorf("bad endpoint %+v, want listed with its FILE:LINE error", bad)
	}
}
