package tunnel

import (
	"errors"
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/netstack"
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

// TestEgressListFollowsReload: a reload changes the deny list without a
// restart, the host's addresses are read again, and a host that cannot
// list its addresses keeps the old config.
func TestEgressListFollowsReload(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	h := newTestHost(t, un, testConfig(t, dir, 1, 2))
	extra := netip.MustParseAddrPort("203.0.113.7:443")
	if h.e.egress.Denies(netstack.ProtoTCP, extra) {
		t.Fatal("203.0.113.7 refused before it was listed")
	}
	cfg := testConfig(t, dir, 1, 2)
	cfg.Host.EgressDeny = []config.EgressRule{{Prefix: netip.MustParsePrefix("203.0.113.7/32")}}
	var newAddr netip.Prefix
	h.e.opts.HostAddresses = func() ([]netip.Prefix, error) {
		return []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), newAddr}, nil
	}
	newAddr = netip.MustParsePrefix("192.0.2.44/24")
	if err := h.e.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !h.e.egress.Denies(netstack.ProtoTCP, extra) || !h.e.egress.Denies(netstack.ProtoTCP, netip.MustParseAddrPort("192.0.2.44:22")) {
		t.Fatal("reload did not apply egress_deny and the host's new address")
	}

	h.e.opts.HostAddresses = func() ([]netip.Prefix, error) { return nil, errors.New("netlink says no") }
	if err := h.e.Reload(testConfig(t, dir, 1, 2)); err == nil {
		t.Fatal("reload without the host's addresses succeeded")
	}
	if !h.e.egress.Denies(netstack.ProtoTCP, extra) {
		t.Fatal("a refused reload changed the deny list")
	}
	st := h.e.Status()
	for _, n := range st.Networks {
		if n.GatewayStats == nil {
			t.Fatalf("network %s has no gateway stats", n.Name)
		}
	}
}
