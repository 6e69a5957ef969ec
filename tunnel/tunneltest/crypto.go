// Package tunneltest provides in-memory fakes of the engine's encrypted
// connection (tunnel.CryptoConn) and of a network's gateway
// (tunnel.GatewayDevice), so that the engine's unit tests exercise
// encrypted switching and the gateway port without root, WireGuard or
// gVisor. Tests inject them through tunnel.Options.OpenCrypto and
// OpenGateway, never through build tags.
//
// The fakes do not import package tunnel (its own tests import them); the
// tests assert at compile time that they implement its interfaces.
package tunneltest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/netstack"
)

// cryptoQueueLen is how many datagrams a CryptoConn queues for its reader
// before it drops (and counts) further ones.
const cryptoQueueLen = 1024

// cryptoBatchSize is the BatchSize of every CryptoConn.
const cryptoBatchSize = 64

// ErrKeyInUse is returned by CryptoNetwork.Open for a private key that an
// open conn already has.
var ErrKeyInUse = errors.New("a conn with this key is open")

// CryptoNetwork connects CryptoConns by public key, the way WireGuard
// authenticates peers: a datagram written to a peer ID reaches the conn
// holding that peer's key, and only if the receiver has the sender's key
// configured; the receiver then reads it as sent from the ID it gave the
// sender, never from an address the sender chose. It is safe for
// concurrent use.
type CryptoNetwork struct {
	mu    sync.Mutex
	conns map[crypto.Key]*CryptoConn // by public key
}

// NewCryptoNetwork returns an empty fake encrypted network.
func NewCryptoNetwork() *CryptoNetwork {
	return &CryptoNetwork{conns: make(map[crypto.Key]*CryptoConn)}
}

// Open returns a conn configured by cfg, as crypto.New would return a
// device. The caller owns it and should Close it. Open is safe for
// concurrent use.
func (n *CryptoNetwork) Open(cfg crypto.Config) (*CryptoConn, error) {
	pub := cfg.PrivateKey.Public()
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.conns[pub]; ok {
		return nil, ErrKeyInUse
	}
	c := &CryptoConn{
		net:   n,
		pub:   pub,
		queue: make(chan cryptoDatagram, cryptoQueueLen),
		done:  make(chan struct{}),
	}
	c.setConfig(cfg)
	n.conns[pub] = c
	return c, nil
}

// Conn returns the open conn whose public key is pub, or nil.
func (n *CryptoNetwork) Conn(pub crypto.Key) *CryptoConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns[pub]
}

func (n *CryptoNetwork) remove(c *CryptoConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[c.pub] == c {
		delete(n.conns, c.pub)
	}
}

// rekey moves c to the public key pub.
func (n *CryptoNetwork) rekey(c *CryptoConn, pub crypto.Key) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.conns[pub]; ok {
		return ErrKeyInUse
	}
	if n.conns[c.pub] == c {
		delete(n.conns, c.pub)
	}
	c.mu.Lock()
	c.pub = pub // written under both locks, read under either
	c.mu.Unlock()
	n.conns[pub] = c
	return nil
}

type cryptoDatagram struct {
	from netip.AddrPort // the sender's ID as the receiver knows it
	data []byte
}

// CryptoConn is a fake of the engine's encrypted underlay (crypto.Device):
// an encap.Conn whose destinations are peer IDs, with Reconfigure, Status
// and Stats. It counts what it sends, receives and drops with crypto's own
// drop reasons: DropUnknownPeer for a Write to an ID that is no configured
// peer, DropTooBig for a datagram over the inner MTU, DropQueueFull at the
// sender when the receiver's queue is full, DropUnknownSource at the
// receiver for a sender whose key it does not have, DropClosed after
// Close. Apart from the single-reader rule of encap.Conn, all methods are
// safe for concurrent use.
type CryptoConn struct {
	net *CryptoNetwork

	mu     sync.Mutex
	pub    crypto.Key // guarded by mu and by net.mu
	cfg    crypto.Config
	byID   map[netip.AddrPort]crypto.Key
	byKey  map[crypto.Key]netip.AddrPort
	perKey map[crypto.Key]*peerBytes

	queue chan cryptoDatagram
	done  chan struct{}
	once  sync.Once

	txPackets, txBytes atomic.Uint64
	rxPackets, rxBytes atomic.Uint64
	drops              [crypto.NumDropReasons]atomic.Uint64
	reconfigures       atomic.Uint64
	alive              []string // PeerAlive's names, in order; guarded by mu
}

type peerBytes struct{ rx, tx atomic.Uint64 }

// setConfig installs cfg's peer table, keeping the byte counts of peers
// that stay.
func (c *CryptoConn) setConfig(cfg crypto.Config) {
	cfg.Peers = append([]crypto.Peer(nil), cfg.Peers...)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.perKey
	c.cfg = cfg
	c.byID = make(map[netip.AddrPort]crypto.Key, len(cfg.Peers))
	c.byKey = make(map[crypto.Key]netip.AddrPort, len(cfg.Peers))
	c.perKey = make(map[crypto.Key]*peerBytes, len(cfg.Peers))
	for _, p := range cfg.Peers {
		c.byID[p.ID] = p.PublicKey
		c.byKey[p.PublicKey] = p.ID
		if b := old[p.PublicKey]; b != nil {
			c.perKey[p.PublicKey] = b
		} else {
			c.perKey[p.PublicKey] = new(peerBytes)
		}
	}
}

// innerMTU is the largest datagram plus inner headers the conn carries.
func (c *CryptoConn) innerMTU() int {
	if c.cfg.MTU == 0 {
		return crypto.DefaultMTU
	}
	return c.cfg.MTU
}

func (c *CryptoConn) drop(r crypto.DropReason, n int) {
	if n > 0 {
		c.drops[r].Add(uint64(n))
	}
}

// Write implements encap.Conn: each buffer is copied to the conn holding
// the key of the peer whose ID is dst. Errors are those of crypto.Device:
// net.ErrClosed after Close, crypto.ErrUnknownPeer for an unknown ID, and
// crypto.ErrQueueFull when nothing could be queued.
func (c *CryptoConn) Write(bufs [][]byte, dst netip.AddrPort) error {
	select {
	case <-c.done:
		c.drop(crypto.DropClosed, len(bufs))
		return net.ErrClosed
	default:
	}
	c.mu.Lock()
	key, ok := c.byID[dst]
	from, mtu := c.pub, c.innerMTU()
	pb := c.perKey[key]
	c.mu.Unlock()
	if !ok {
		c.drop(crypto.DropUnknownPeer, len(bufs))
		return crypto.ErrUnknownPeer
	}
	to := c.net.Conn(key)
	sent, full := 0, 0
	for _, b := range bufs {
		if len(b)+crypto.InnerOverhead > mtu {
			c.drop(crypto.DropTooBig, 1)
			continue
		}
		c.txPackets.Add(1)
		c.txBytes.Add(uint64(len(b)))
		pb.tx.Add(uint64(len(b)))
		sent++
		if to == nil {
			continue // the peer is down: WireGuard loses it silently
		}
		if !to.deliver(from, b) {
			full++
		}
	}
	c.drop(crypto.DropQueueFull, full)
	if sent > 0 && sent == full {
		return crypto.ErrQueueFull
	}
	return nil
}

// deliver queues a copy of b from the conn whose public key is from. It
// reports false only when the queue was full.
func (c *CryptoConn) deliver(from crypto.Key, b []byte) bool {
	c.mu.Lock()
	id, ok := c.byKey[from]
	pb := c.perKey[from]
	c.mu.Unlock()
	if !ok {
		c.drop(crypto.DropUnknownSource, 1)
		return true
	}
	select {
	case <-c.done:
		return true
	default:
	}
	select {
	case c.queue <- cryptoDatagram{from: id, data: append([]byte(nil), b...)}:
		pb.rx.Add(uint64(len(b)))
		return true
	default:
		return false
	}
}

// Read implements encap.Conn: it blocks until a datagram is queued or the
// conn is closed, then returns up to min(len(bufs), BatchSize()) of them,
// each from the ID of the peer that sent it.
func (c *CryptoConn) Read(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if err := encap.CheckReadArgs(bufs, sizes, eps); err != nil {
		return 0, err
	}
	bufs = bufs[:min(len(bufs), cryptoBatchSize)]
	if len(bufs) == 0 {
		return 0, nil
	}
	var d cryptoDatagram
	select {
	case <-c.done:
		return 0, net.ErrClosed
	case d = <-c.queue:
	}
	n, bytes := 0, 0
	for {
		sizes[n] = copy(bufs[n], d.data)
		eps[n] = d.from
		bytes += sizes[n]
		n++
		if n == len(bufs) {
			break
		}
		select {
		case d = <-c.queue:
			continue
		default:
		}
		break
	}
	c.rxPackets.Add(uint64(n))
	c.rxBytes.Add(uint64(bytes))
	return n, nil
}

// BatchSize implements encap.Conn.
func (c *CryptoConn) BatchSize() int { return cryptoBatchSize }

// LocalAddr implements encap.Conn: the configured listen address and port.
func (c *CryptoConn) LocalAddr() netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.cfg.ListenAddr
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(a, c.cfg.ListenPort)
}

// Close implements encap.Conn: it leaves the network and wakes a pending
// Read with net.ErrClosed. It is idempotent.
func (c *CryptoConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.net.remove(c)
	})
	return nil
}

// Reconfigure replaces the peer table and key, as crypto.Device does; a
// changed Name, MTU or ListenAddr is refused with
// crypto.ErrRestartRequired, and nothing changes then.
func (c *CryptoConn) Reconfigure(cfg crypto.Config) error {
	c.mu.Lock()
	old, cur := c.cfg, c.pub
	c.mu.Unlock()
	if cfg.Name != old.Name || cfg.MTU != old.MTU || cfg.ListenAddr != old.ListenAddr {
		return crypto.ErrRestartRequired
	}
	if pub := cfg.PrivateKey.Public(); pub != cur {
		if err := c.net.rekey(c, pub); err != nil {
			return err
		}
	}
	c.setConfig(cfg)
	c.reconfigures.Add(1)
	return nil
}

// Reconfigures counts successful Reconfigure calls.
func (c *CryptoConn) Reconfigures() uint64 { return c.reconfigures.Load() }

// Config returns a copy of the configuration in force.
func (c *CryptoConn) Config() crypto.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfg
	cfg.Peers = append([]crypto.Peer(nil), cfg.Peers...)
	return cfg
}

// Status reports every configured peer in configuration order, with the
// bytes the fake carried to and from it. The fake has no handshakes, so
// LastHandshake is zero.
func (c *CryptoConn) Status() []crypto.PeerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]crypto.PeerStatus, 0, len(c.cfg.Peers))
	for _, p := range c.cfg.Peers {
		b := c.perKey[p.PublicKey]
		out = append(out, crypto.PeerStatus{
			PublicKey: p.PublicKey, ID: p.ID, TunnelAddr: p.TunnelAddr, Endpoint: p.Endpoint,
			RxBytes: b.rx.Load(), TxBytes: b.tx.Load(),
		})
	}
	return out
}

// PeerAlive records name. The fake has no handshakes to start; Alive
// lets a test see which peers the caller reported alive.
func (c *CryptoConn) PeerAlive(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alive = append(c.alive, name)
}

// Alive returns the names PeerAlive was called with, in order.
func (c *CryptoConn) Alive() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.alive...)
}

// Stats returns a copy of the conn's counters, in crypto.Device's form.
func (c *CryptoConn) Stats() crypto.Stats {
	s := crypto.Stats{
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	return s
}

var _ encap.Conn = (*CryptoConn)(nil)

// Inner returns nil: the fake carries no inner stack, so gossip never
// runs inside its tunnels.
func (c *CryptoConn) Inner() *netstack.InnerStack { return nil }
