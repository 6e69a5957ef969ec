package consensus

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// Reasons the log's transport refuses a connection, counted by
// Node.Refused.
const (
	// RefusedStranger: a connection from an address that is not a
	// voter's. It is closed at once, before the TLS handshake, so that a
	// stranger can neither hold a handshake slot nor probe the TLS stack.
	RefusedStranger = "raft_stranger"
	// RefusedUnauthenticated: a connection from a voter's address whose
	// TLS handshake failed: no cluster key (a wrong secret or garbage).
	RefusedUnauthenticated = "raft_unauthenticated"
	// RefusedBusy: a connection closed at once because its address holds
	// its share of the handshake slots, or all are taken.
	RefusedBusy = "raft_busy"
)

// keyInfo is the HKDF info string that binds the transport key to its
// use; gossip derives its own key from the same secret with another one.
const keyInfo = "vxwire raft"

// Stream kinds: the first byte a dialer sends after the TLS handshake.
const (
	kindRaft    = 'r' // raft's own RPCs (NetworkTransport)
	kindForward = 'f' // a command forwarded to the leader
	kindProbe   = 'p' // a reachability probe
)

// handshakeTimeout bounds the TLS handshake and the kind byte of an
// accepted connection; maxHandshakes bounds how many run at once.
const (
	handshakeTimeout = 5 * time.Second
	maxHandshakes    = 64
	// maxHandshakesPerAddr bounds the handshakes one address runs at
	// once; a member needs a few (raft's pool, a forward, a probe).
	maxHandshakesPerAddr = 16
)

// streamLayer is raft's StreamLayer over mutually authenticated TLS 1.3.
// Both ends hold the same ed25519 key, derived from the cluster secret by
// HKDF-SHA256, and each accepts only a peer that proves it holds that key
// in the handshake: a stranger without the secret can neither read the
// stream nor join it. In front of the handshake a gate closes connections
// from addresses other than the voters' (allowed), as gossip's gate does,
// and streams are dialled from this host's own raft address, so that the
// peers' gates know them. Accepted connections other than raft's go to
// serve.
type streamLayer struct {
	ln      net.Listener
	server  *tls.Config
	client  *tls.Config
	l       *slog.Logger
	crash   safe.Reporter
	serve   func(kind byte, c net.Conn)
	allowed map[netip.Addr]bool // nil admits every address
	local   *net.TCPAddr        // source of dialled streams; nil: the kernel's choice
	refused *tally.Counts

	raftConns chan net.Conn
	sem       chan struct{}      // handshake slots, maxHandshakes
	slotMu    sync.Mutex         // guards slots
	slots     map[netip.Addr]int // handshake slots held, by remote address
	done      chan struct{}
	closeOnce sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// tlsConfigs derives the key from secret and returns the server and client
// TLS configurations that require it of the other end.
func tlsConfigs(secret []byte) (server, client *tls.Config, err error) {
	seed, err := hkdf.Key(sha256.New, secret, nil, keyInfo, ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("consensus: cannot derive key: %w", err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		DNSNames:     []string{"vxwire-raft"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, nil, fmt.Errorf("consensus: cannot make certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) != 1 {
			return errors.New("peer must present exactly one certificate")
		}
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		k, ok := c.PublicKey.(ed25519.PublicKey)
		if !ok || !bytes.Equal(k, pub) {
			return errors.New("peer does not hold the cluster key")
		}
		return nil
	}
	server = &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAnyClientCert, VerifyPeerCertificate: verify,
	}
	client = &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		// The chain is checked by verify: the peer's key must be the
		// cluster key, which no CA vouches for.
		InsecureSkipVerify: true, VerifyPeerCertificate: verify, ServerName: "vxwire-raft",
	}
	return server, client, nil
}

// gateOpts are the stream layer's gate: the addresses it admits (nil
// admits all), the address it dials from (invalid: the kernel's choice)
// and where it counts refusals.
type gateOpts struct {
	allowed []netip.Addr
	local   netip.Addr
	refused *tally.Counts
}

func newStreamLayer(ln net.Listener, secret []byte, l *slog.Logger, crash safe.Reporter, serve func(byte, net.Conn), g gateOpts) (*streamLayer, error) {
	server, client, err := tlsConfigs(secret)
	if err != nil {
		return nil, err
	}
	s := &streamLayer{
		ln: ln, server: server, client: client, l: l, crash: crash, serve: serve, refused: g.refused,
		raftConns: make(chan net.Conn), sem: make(chan struct{}, maxHandshakes), done: make(chan struct{}),
		slots: make(map[netip.Addr]int),
	}
	if s.refused == nil {
		s.refused = new(tally.Counts)
	}
	if g.allowed != nil {
		s.allowed = make(map[netip.Addr]bool, len(g.allowed))
		for _, a := range g.allowed {
			s.allowed[a.Unmap()] = true
		}
	}
	if g.local.IsValid() && !g.local.IsUnspecified() {
		s.local = net.TCPAddrFromAddrPort(netip.AddrPortFrom(g.local, 0))
	}
	crash.Go("raft accept", s.routineAccept)
	return s, nil
}

// routineAccept accepts TCP connections and authenticates each in its own
// goroutine, at most maxHandshakes at once.
func (s *streamLayer) routineAccept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		from := remoteIP(c.RemoteAddr())
		if !s.admits(from) {
			s.refused.Add(RefusedStranger)
			c.Close()
			continue
		}
		if !s.takeSlot(from) {
			s.refused.Add(RefusedBusy)
			c.Close()
			continue
		}
		go func() {
			defer s.crash.Recover(RecoveredConn, func() { c.Close() })
			defer s.releaseSlot(from)
			s.handshake(c)
		}()
	}
}

func (s *streamLayer) handshake(c net.Conn) {
	tc := tls.Server(c, s.server)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	var kind [1]byte
	if err := tc.Handshake(); err != nil {
		s.refused.Add(RefusedUnauthenticated)
		s.l.Debug("refused raft connection", "peer", c.RemoteAddr().String(), "error", err)
		c.Close()
		return
	}
	if _, err := tc.Read(kind[:]); err != nil {
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	if kind[0] != kindRaft {
		go func() {
			defer s.crash.Recover(RecoveredConn, func() { tc.Close() })
			s.serve(kind[0], tc)
		}()
		return
	}
	select {
	case s.raftConns <- tc:
	case <-s.done:
		tc.Close()
	}
}

// remoteIP returns the IP address of a connection's remote end; the
// zero Addr when it has none.
func remoteIP(addr net.Addr) netip.Addr {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	return ta.AddrPort().Addr().Unmap()
}

// admits reports whether the gate lets a connection from ip in.
func (s *streamLayer) admits(ip netip.Addr) bool {
	return s.allowed == nil || s.allowed[ip]
}

// takeSlot takes one of the handshake slots for a connection from ip, of
// which one address may hold at most maxHandshakesPerAddr: a process on
// one peer's address without the secret cannot hold them all. It
// reports false when none is free.
func (s *streamLayer) takeSlot(ip netip.Addr) bool {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	if s.slots[ip] >= maxHandshakesPerAddr {
		return false
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return false
	}
	s.slots[ip]++
	return true
}

// releaseSlot gives back a slot takeSlot took for ip.
func (s *streamLayer) releaseSlot(ip netip.Addr) {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	if s.slots[ip]--; s.slots[ip] <= 0 {
		delete(s.slots, ip)
	}
	<-s.sem
}

// Accept implements net.Listener: it returns authenticated raft streams.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftConns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return s.ln.Close()
}

// Addr implements net.Listener.
func (s *streamLayer) Addr() net.Addr { return s.ln.Addr() }

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(string(address), kindRaft, timeout)
}

// dial connects to address, authenticates and announces kind.
func (s *streamLayer) dial(address string, kind byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if s.local != nil {
		d.LocalAddr = s.local
	}
	c, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, s.client)
	_ = tc.SetDeadline(time.Now().Add(timeout))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, fmt.Errorf("consensus: %s: %w", address, err)
	}
	if _, err := tc.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}
