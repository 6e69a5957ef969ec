package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/netstack"
)

// TestEncryptedWithoutDeviceDrops switches a frame of an encrypted network
// to a remote MAC on a host that has no WireGuard device. Before the fix
// flush wrote through the nil connection and the daemon panicked; now the
// frames are dropped and counted.
func TestEncryptedWithoutDeviceDrops(t *testing.T) {
	e, _ := hotPathEngine(t, func(c *config.Config) { c.Networks[0].Encrypted = true })
	if e.enc != nil {
		t.Fatal("test engine has a WireGuard device")
	}
	p := e.ports[epKey{"blue", "a"}]
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	b := e.sw.poolFor(p.net.mtu).get()
	fillBatch(b, 8, remote, p.mac)
	e.sw.switchFromPort(p, b, 8)
	if got := e.sw.host.drops[dropNoKey].Load(); got != 8 {
		t.Fatalf("no_key drops = %d, want 8", got)
	}
	if got := e.peers["h2"].stats.drops[dropNoKey].Load(); got != 8 {
		t.Fatalf("peer no_key drops = %d, want 8", got)
	}
}

// TestNetworkThatFailsToApply creates a network whose gateway cannot be
// opened: the create fails, nothing is persisted, the engine keeps its
// other networks, and the next network is created as usual.
func TestNetworkThatFailsToApply(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, 1, 1)
	bad := netip.MustParseAddr("10.99.0.1")
	e, err := New(cfg, Options{
		Logger: slog.New(slog.DiscardHandler),
		Listen: func(a netip.AddrPort, _ int) (encap.Conn, error) {
			return &discardConn{addr: a, closed: make(chan struct{})}, nil
		},
		OpenGateway: func(c netstack.GatewayConfig, l *slog.Logger) (GatewayDevice, error) {
			if c.Addr.Addr() == bad {
				return nil, errors.New("no such luck")
			}
			return defaultOpenGateway(c, l)
		},
		UnderlayMTU: func(netip.Addr) (int, error) { return 1500, nil },
		NewCluster:  func(gossip.Config, *slog.Logger) (*gossip.Cluster, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	e.Start()
	ctx := context.Background()
	if _, err := e.CreateNetwork(ctx, api.NetworkSpec{Name: "broken", Subnet: "10.99.0.0/24"}); err == nil {
		t.Fatal("creating a network whose gateway fails succeeded")
	}
	if b, err := os.ReadFile(filepath.Join(cfg.Host.StateDir, networksFile)); err == nil && strings.Contains(string(b), "broken") {
		t.Errorf("the failed network was persisted: %s", b)
	}
	if _, err := e.Network("broken"); err == nil {
		t.Error("the failed network is listed")
	}
	if len(e.Networks()) != 2 {
		t.Errorf("networks after the failure: %+v", e.Networks())
	}
	if _, err := e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.98.0.0/24"}); err != nil {
		t.Fatalf("the next create: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Host.StateDir, networksFile))
	if err != nil || !strings.Contains(string(b), "green") || strings.Contains(string(b), "broken") {
		t.Errorf("persisted networks: %s, %v", b, err)
	}
}
