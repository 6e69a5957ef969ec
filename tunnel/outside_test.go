package tunnel

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

// natConfig is a server h1 with peers: h2 (addressed, key), k (kernel
// VXLAN) and laptop (key, no address).
func natConfig(behindNAT bool) *config.Config {
	c := &config.Config{Host: config.Host{Name: "h1", RaftPort: 7948, BehindNAT: behindNAT}}
	c.Peers = []config.Peer{
		{Name: "h2", Address: netip.MustParseAddr("198.18.0.2"), GossipAddress: netip.MustParseAddr("198.18.0.2"),
			HasPublicKey: true, TunnelAddress: netip.MustParseAddr("100.82.0.2")},
		{Name: "k", Address: netip.MustParseAddr("198.18.0.3"), GossipAddress: netip.MustParseAddr("198.18.0.3"), Kernel: true},
		{Name: "laptop", HasPublicKey: true, TunnelAddress: netip.MustParseAddr("100.82.9.2")},
	}
	return c
}

// Only the peer without an address may ask for blocks, by its tunnel
// address; a host behind NAT asks the peers that run the log, at their
// tunnel addresses; gossip reaches the roaming peer through its tunnel,
// and on a host behind NAT every peer.
func TestOutsidersAndServers(t *testing.T) {
	srv := natConfig(false)
	if got := outsiders(srv); !maps.Equal(got, map[netip.Addr]string{netip.MustParseAddr("100.82.9.2"): "laptop"}) {
		t.Fatalf("outsiders = %v, want only the laptop", got)
	}
	if got := viaTunnel(srv); !maps.Equal(got, map[netip.Addr]netip.Addr{netip.MustParseAddr("100.82.9.2"): netip.MustParseAddr("100.82.9.2")}) {
		t.Fatalf("server's gossip through the tunnel = %v, want the laptop only", got)
	}
	lap := natConfig(true)
	lap.Peers = lap.Peers[:2]
	if got := outsideServers(lap); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("100.82.0.2:7948")}) {
		t.Fatalf("servers = %v, want h2's tunnel address", got)
	}
	if got := viaTunnel(lap); len(got) != 2 || got[netip.MustParseAddr("198.18.0.2")] != netip.MustParseAddr("100.82.0.2") {
		t.Fatalf("laptop's gossip through the tunnel = %v", got)
	}
}
