package tunnel

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/overhead"
	"github.com/vxwire/vxwire/netstack"
)

// CryptoConn is the encrypted underlay: VXLAN datagrams to a peer carried
// inside WireGuard. crypto.Device implements it.
type CryptoConn interface {
	encap.Conn
	// Reconfigure applies changed peers without disturbing the sessions
	// of unchanged ones.
	Reconfigure(cfg crypto.Config) error
	// Status reports every configured peer's WireGuard state.
	Status() []crypto.PeerStatus
	// Stats reports the data-path counters.
	Stats() crypto.Stats
	// Inner is the stack on the tunnel address (crypto.Config.InnerPort),
	// or nil: the published-port relay of encrypted networks listens and
	// dials there, and gossip runs there with peers without an address.
	Inner() *netstack.InnerStack
	// PeerAlive hears that the peer with this host name joined the
	// cluster, so that a first handshake need not wait on a timer. It
	// must not block.
	PeerAlive(name string)
}

var _ CryptoConn = (*crypto.Device)(nil)

func defaultOpenCrypto(c crypto.Config, l *slog.Logger) (CryptoConn, error) {
	return crypto.New(c, l)
}

// cryptoConfig derives the WireGuard device's configuration: one peer per
// configured peer that has a public key; a peer's ID is its VXLAN address,
// the name the switch knows it by.
func cryptoConfig(cfg *config.Config, underlayMTU int) crypto.Config {
	c := crypto.Config{
		PrivateKey:  crypto.Key(cfg.Host.PrivateKey),
		ListenPort:  cfg.Host.WGPort,
		ListenAddr:  cfg.Host.Address,
		Name:        cfg.Host.WGName,
		SocketDir:   cfg.Host.UAPIDir,
		TunnelAddr:  cfg.Host.TunnelAddress,
		MTU:         underlayMTU - overhead.WireGuard,
		Secret:      cfg.Host.Secret,
		RotateEvery: cfg.Host.RotateEvery,
	}
	// Every host with a key runs the inner stack: the relay of an
	// encrypted network's published ports needs it on both ends, and an
	// API publish can appear at any time, while the stack is fixed when
	// the device starts. It costs a few goroutines and no socket.
	c.InnerPort = cfg.Host.Port
	if gossipInTunnel(cfg) {
		c.InnerPort = cfg.Host.GossipPort
	}
	for _, p := range cfg.Peers {
		if !p.HasPublicKey {
			continue
		}
		cp := crypto.Peer{
			PublicKey:  crypto.Key(p.PublicKey),
			TunnelAddr: p.TunnelAddress,
			Name:       p.Name,
			ID:         p.AddrPort(),
			Keepalive:  p.Keepalive,
		}
		if !p.Roaming() {
			// A roaming peer's endpoint is learnt from its handshake.
			cp.Endpoint = netip.AddrPortFrom(p.Address, p.WGPort)
		}
		c.Peers = append(c.Peers, cp)
	}
	return c
}

// gossipInTunnel reports whether some gossip of this host runs inside
// WireGuard: the host is behind NAT, or a peer has no address.
func gossipInTunnel(cfg *config.Config) bool {
	if !cfg.Host.HasPrivateKey {
		return false
	}
	return cfg.Host.BehindNAT || slices.ContainsFunc(cfg.Peers, config.Peer.Roaming)
}

// openCrypto starts the WireGuard device when the host has a key.
func (e *Engine) openCrypto(cfg *config.Config) error {
	if !cfg.Host.HasPrivateKey {
		return nil
	}
	cc := cryptoConfig(cfg, e.underlayMTU(cfg))
	cc.Crash = e.Reporter().With("component", "wireguard")
	c, err := e.opts.OpenCrypto(cc, e.l.With("component", "wireguard"))
	if err != nil {
		return fmt.Errorf("cannot start wireguard on port %d: %w", cfg.Host.WGPort, err)
	}
	e.enc = c
	e.sw.enc = c
	return nil
}

// peerJoined is gossip's OnJoin: a peer that joins (a start, a restart,
// the end of a partition) gets a WireGuard handshake at once. It runs
// under memberlist's lock and does not block.
func (e *Engine) peerJoined(name string) {
	if e.enc != nil {
		e.enc.PeerAlive(name)
	}
}

// wireguardStatus returns the WireGuard view of every peer, by peer ID.
func (e *Engine) wireguardStatus() map[netip.AddrPort]*api.WireGuardPeer {
	if e.enc == nil {
		return nil
	}
	out := make(map[netip.AddrPort]*api.WireGuardPeer)
	for _, s := range e.enc.Status() {
		w := &api.WireGuardPeer{
			PublicKey:     s.PublicKey.String(),
			TunnelAddress: s.TunnelAddr.String(),
			LastHandshake: s.LastHandshake,
			RxBytes:       s.RxBytes,
			TxBytes:       s.TxBytes,
		}
		if s.Endpoint.IsValid() {
			w.Endpoint = s.Endpoint.String()
		}
		if s.PSK {
			w.KeyEpoch = uint64(s.PSKEpoch)
		}
		out[s.ID] = w
	}
	return out
}
