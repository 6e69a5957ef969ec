package tunnel

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
)

// Address blocks of hosts outside the log (see internal/consensus
// outside.go). A host behind NAT has no vote, yet allocates from blocks
// like every host: its Outside asks its servers, inside WireGuard, to
// commit its takes and pins; each server that runs the log serves such
// requests on its tunnel address, raft_port, for its peers without an
// address, which it knows by the source address WireGuard vouches for.

// outsiders maps the tunnel addresses of the peers that may ask this host
// for blocks to their names: the peers without an address (they have no
// vote, see openBlocks).
func outsiders(cfg *config.Config) map[netip.Addr]string {
	m := make(map[netip.Addr]string)
	for _, p := range cfg.Peers {
		if p.Roaming() && !p.Kernel {
			m[p.TunnelAddress] = p.Name
		}
	}
	return m
}

// outsideServers returns where a host behind NAT asks for blocks: its
// peers that run the log, at their tunnel addresses.
func outsideServers(cfg *config.Config) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range cfg.Peers {
		if !p.Kernel && !p.Roaming() && p.HasPublicKey {
			out = append(out, netip.AddrPortFrom(p.TunnelAddress, cfg.Host.RaftPort))
		}
	}
	return out
}

// openOutside returns the log as a host behind NAT sees it, or nil when
// it has no tunnel to ask through.
func (e *Engine) openOutside(cfg *config.Config) (*consensus.Outside, error) {
	if e.enc == nil || e.enc.Inner() == nil {
		return nil, nil
	}
	inner := e.enc.Inner()
	o, err := consensus.NewOutside(consensus.OutsideConfig{
		Host:    cfg.Host.Name,
		Servers: outsideServers(cfg),
		Dial: func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
			return inner.DialTCP(ctx, to)
		},
		Dir: filepath.Join(cfg.Host.StateDir, "outside"),
	}, e.l.With("component", "ipam-outside"))
	if err != nil {
		return nil, fmt.Errorf("cannot open the address blocks granted by the servers: %w", err)
	}
	return o, nil
}

// serveOutside serves the block requests of peers without an address on
// this host's tunnel address, when it runs the log and a tunnel. It
// serves from the start, so that a reload adding such a peer needs no
// restart; the peer list is read per connection.
func (e *Engine) serveOutside(cfg *config.Config) error {
	if e.blocks == nil || e.enc == nil || e.enc.Inner() == nil {
		return nil
	}
	m := outsiders(cfg)
	e.outsiders.Store(&m)
	ln, err := e.enc.Inner().ListenTCP(cfg.Host.RaftPort)
	if err != nil {
		return fmt.Errorf("cannot serve address blocks on the tunnel address %s:%d: %w", cfg.Host.TunnelAddress, cfg.Host.RaftPort, err)
	}
	e.blocks.ServeOutside(ln, func(a netip.Addr) (string, bool) {
		name, ok := (*e.outsiders.Load())[a]
		return name, ok
	})
	return nil
}

// unlockedReloadOutside follows a reload: the peers that may ask this
// host for blocks, and the servers a host behind NAT asks.
func (e *Engine) unlockedReloadOutside(cfg *config.Config) {
	if e.outsiders.Load() != nil {
		m := outsiders(cfg)
		e.outsiders.Store(&m)
	}
	if e.outside != nil {
		e.outside.SetServers(outsideServers(cfg))
	}
}
