package tunnel

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/netstack"
	"github.com/vxwire/vxwire/tunnel/tap"
	"github.com/vxwire/vxwire/tunnel/tap/taptest"
)

func TestEgressRules(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), 1, 3)
	cfg.Host.EgressDeny = []config.EgressRule{
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Port: 443, Proto: "tcp"},
		{Prefix: netip.MustParsePrefix("198.18.0.2/32")}, // a peer: listed once
	}
	local := []netip.Prefix{
		netip.MustParsePrefix("198.18.0.1/24"),
		netip.MustParsePrefix("192.0.2.10/24"),
		netip.MustParsePrefix("127.0.0.1/8"),
		netip.MustParsePrefix("2001:db8::1/64"),
	}
	p, err := netstack.NewEgressPolicy(egressRules(cfg, local))
	if err != nil {
		t.Fatal(err)
	}
	tcp, udp := netstack.ProtoTCP, netstack.ProtoUDP
	for _, tc := range []struct {
		proto netstack.Proto
		dst   string
		want  bool
	}{
		{tcp, "198.18.0.1:7946", true},  // the host's underlay address: gossip
		{tcp, "192.0.2.10:9100", true},  // another interface: metrics
		{udp, "192.0.2.255:53", true},   // its broadcast address
		{udp, "198.18.0.2:4789", true},  // a peer's VXLAN port
		{tcp, "198.18.0.3:7946", true},  // another peer's gossip port
		{tcp, "100.82.0.2:22", true},    // a peer's tunnel address
		{tcp, "100.82.0.1:22", true},    // the host's tunnel address
		{tcp, "10.78.0.5:80", true},     // another network's subnet
		{udp, "192.0.2.99:4789", true},  // VXLAN to any address
		{udp, "192.0.2.99:51820", true}, // WireGuard to any address
		{tcp, "192.0.2.99:4789", false}, // VXLAN is UDP only
		{tcp, "203.0.113.9:443", true},  // host.egress_deny
		{udp, "203.0.113.9:443", false}, // ... for TCP only
		{tcp, "198.18.0.9:80", false},   // a neighbour on the underlay that is no host
		{udp, "192.0.2.99:53", false},
	} {
		if got := p.Denies(tc.proto, netip.MustParseAddrPort(tc.dst)); got != tc.want {
			t.Errorf("Denies(%d, %s) = %v, want %v", tc.proto, tc.dst, got, tc.want)
		}
	}
	rules := egressRules(cfg, local)
	seen := map[netstack.EgressRule]bool{}
	for _, r := range rules {
		if seen[r] {
			t.Errorf("rule %s listed twice", r)
		}
		seen[r] = true
	}
}

// TestEgressRulesGossipAddresses checks that the control addresses of the
// host and its peers (gossip_address, on links apart from the data path)
// are refused as well as the data addresses. Before gossip_address,
// a peer's control address was no host address and reachable.
func TestEgressRulesGossipAddresses(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), 1, 3)
	cfg.Host.GossipAddress = netip.MustParseAddr("198.19.0.1")
	cfg.Peers[0].GossipAddress = netip.MustParseAddr("198.19.0.2")
	cfg.Peers[1].GossipAddress = netip.MustParseAddr("198.19.0.3")
	p, err := netstack.NewEgressPolicy(egressRules(cfg, []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dst  string
		want bool
	}{
		{"198.19.0.1:7948", true}, // the host's raft port on its control address
		{"198.19.0.2:7946", true}, // a peer's gossip
		{"198.19.0.3:22", true},   // another peer's control address
		{"198.18.0.2:7946", true}, // a peer's data address still
		{"198.19.0.77:80", false}, // a neighbour on the control link
	} {
		if got := p.Denies(netstack.ProtoTCP, netip.MustParseAddrPort(tc.dst)); got != tc.want {
			t.Errorf("Denies(tcp, %s) = %v, want %v", tc.dst, got, tc.want)
		}
	}
	if got := gossipPeers(cfg); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.19.0.2"), netip.MustParseAddr("198.19.0.3")}) {
		t.Errorf("gossip accepts %v, want the peers' gossip addresses", got)
	}
}

// fakeAddrs is the host's address list, changed by the test.
type fakeAddrs struct {
	mu    sync.Mutex
	addrs []netip.Prefix
	err   error
}

func (f *fakeAddrs) set(err error, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs, f.err = nil, err
	for _, a := range addrs {
		f.addrs = append(f.addrs, netip.MustParsePrefix(a))
	}
}

func (f *fakeAddrs) list() ([]netip.Prefix, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs), f.err
}

// newEgressHost starts an engine on cfg whose host addresses come from
// addrs, read again every 10 ms.
func newEgressHost(t *testing.T, cfg *config.Config, addrs *fakeAddrs) *Engine {
	t.Helper()
	un := encaptest.NewNetwork()
	e, err := New(cfg, Options{
		Logger: slog.New(slog.DiscardHandler),
		Listen: func(a netip.AddrPort, batch int) (encap.Conn, error) { return un.Conn(a), nil },
		OpenPort: func(c tap.Config, _ *slog.Logger) (tap.Device, error) {
			return taptest.NewChannelDevice(c.MTU, 64, 256), nil
		},
		UnderlayMTU:   func(netip.Addr) (int, error) { return 1500, nil },
		NewCluster:    func(gossip.Config, *slog.Logger) (*gossip.Cluster, error) { return nil, nil },
		HostAddresses: addrs.list,
		AddressCheck:  10 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.Start()
	t.Cleanup(e.Stop)
	return e
}

// TestEgressListFollowsReload: a reload changes the deny list without a
// restart, the host's addresses are read again (at reload and while
// running), and a host that cannot list its addresses keeps the old
// config.
func TestEgressListFollowsReload(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	addrs := new(fakeAddrs)
	addrs.set(nil, "198.18.0.1/24")
	e := newEgressHost(t, testConfig(t, dir, 1, 2), addrs)
	extra := netip.MustParseAddrPort("203.0.113.7:443")
	if e.egress.Denies(netstack.ProtoTCP, extra) {
		t.Fatal("203.0.113.7 refused before it was listed")
	}
	cfg := testConfig(t, dir, 1, 2)
	cfg.Host.EgressDeny = []config.EgressRule{{Prefix: netip.MustParsePrefix("203.0.113.7/32")}}
	if err := e.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !e.egress.Denies(netstack.ProtoTCP, extra) {
		t.Fatal("reload did not apply egress_deny")
	}

	// An address the host gains while running joins the list, and the
	// operator's entries stay.
	added := netip.MustParseAddrPort("192.0.2.44:22")
	addrs.set(nil, "198.18.0.1/24", "192.0.2.44/24")
	waitFor(t, func() bool { return e.egress.Denies(netstack.ProtoTCP, added) })
	if !e.egress.Denies(netstack.ProtoTCP, extra) {
		t.Fatal("the address refresh lost egress_deny")
	}

	addrs.set(errors.New("netlink says no"))
	if err := e.Reload(testConfig(t, dir, 1, 2)); err == nil {
		t.Fatal("reload without the host's addresses succeeded")
	}
	if !e.egress.Denies(netstack.ProtoTCP, extra) || !e.egress.Denies(netstack.ProtoTCP, added) {
		t.Fatal("a refused reload changed the deny list")
	}
	for _, n := range e.Status().Networks {
		if n.GatewayStats == nil {
			t.Fatalf("network %s has no gateway stats", n.Name)
		}
	}
}
