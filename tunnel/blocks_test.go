package tunnel

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus/consensustest"
	"github.com/vxwire/vxwire/internal/safe"
)

// TestOpenBlocksVoters: kernel VXLAN peers get no vote, so a host whose
// only peers are kernel hosts holds its subnets alone and never waits for
// a quorum; vxwire peers are voters. The log binds to the control address
// (host.gossip_address), not the data path's.
func TestOpenBlocksVoters(t *testing.T) {
	port := consensustest.FreeAddrs(t, 1)[0].Port()
	cfg := &config.Config{Host: config.Host{
		Name: "h1", Address: netip.MustParseAddr("127.0.0.5"), GossipAddress: netip.MustParseAddr("127.0.0.1"), RaftPort: port,
		StateDir: t.TempDir(), Secret: []byte("a cluster secret of 32 bytes!!!"),
	}}
	cfg.Peers = []config.Peer{{Name: "k1", Address: netip.MustParseAddr("127.0.0.2"), Kernel: true}}
	l := slog.New(slog.DiscardHandler)
	n, err := openBlocks(cfg, l, safe.Reporter{L: l})
	if err != nil || n != nil {
		t.Fatalf("with only a kernel peer: %v, %v; want no block log", n, err)
	}
	cfg.Peers = append(cfg.Peers, config.Peer{Name: "h2", Address: netip.MustParseAddr("127.0.0.3"), GossipAddress: netip.MustParseAddr("127.0.0.4")})
	n, err = openBlocks(cfg, l, safe.Reporter{L: l})
	if err != nil || n == nil {
		t.Fatalf("with a vxwire peer: %v, %v", n, err)
	}
	defer n.Close()
	if n.Voters() != 2 {
		t.Fatalf("voters = %d, want 2 (h1 and h2, not k1)", n.Voters())
	}
	c, err := net.Dial("tcp", netip.AddrPortFrom(cfg.Host.GossipAddress, port).String())
	if err != nil {
		t.Fatalf("the log does not listen on the control address: %v", err)
	}
	c.Close()
}
