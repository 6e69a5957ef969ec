// Package resolver is the embedded DNS server of an overlay network: it
// answers on the network's gateway address with the addresses of the
// network's endpoints, like Docker's embedded DNS, and forwards other names
// to upstream servers.
//
// One Server serves one network. It reads queries from a net.PacketConn
// (UDP) and a net.Listener (TCP) that it is given, so the same code serves
// gVisor netstack conns in the daemon and loopback sockets in tests.
//
// Queries are parsed and answered straight on the wire (RFC 1035 §4.1): the
// server reads the header, the one question and an EDNS0 OPT record
// (RFC 6891), and writes answers into a reused buffer with the question
// name compressed to a pointer. A locally answered UDP query costs one
// allocation, the string handed to Names. github.com/miekg/dns is used for
// the dns.Handler returned by Handler and in tests.
//
// Flow of one query:
//
//	routineUDP / routineConn ── answer ─┬─ local: A, PTR, NODATA, NXDOMAIN, REFUSED, FORMERR, NOTIMP
//	                                     └─ other names: forward ── upstream UDP ── (TC) upstream TCP
//
// Names are answered from the network's own view only: NAME and
// NAME.NETWORK give the A records of NAME's endpoints, every other
// single-label name and every name under NETWORK or under Config.Isolated
// is NXDOMAIN and never forwarded.
package resolver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
)

// Names is the view of endpoint records the resolver answers from.
// Implementations are safe for concurrent use and cheap to call; the server
// calls them on every query and never modifies the returned slices.
type Names interface {
	// Lookup returns the IPv4 addresses registered under name (a container
	// name or alias, lower case, no trailing dot) in network. Several
	// endpoints may share a name (a service): all their addresses are
	// returned. name is only valid during the call (the server passes a
	// view of the query's buffer, so that a lookup allocates nothing): an
	// implementation must not keep it, nor anything made from it without
	// copying.
	Lookup(network, name string) []netip.Addr
	// Reverse returns the names (container names, without domain) of addr
	// in network.
	Reverse(network string, addr netip.Addr) []string
}

// Defaults applied by New to zero Config fields.
const (
	DefaultTTL         = 5                // seconds; short so that moved endpoints are seen quickly
	DefaultTimeout     = 2 * time.Second  // per upstream attempt
	DefaultMaxTCPConns = 64               // concurrent TCP connections
	DefaultTCPIdle     = 10 * time.Second // idle time before a TCP connection is closed
)

// Config is the per-network configuration of a Server. The Server copies it
// in New; later changes have no effect.
type Config struct {
	// Network is the network this server answers for; NAME.NETWORK is
	// answered as well as NAME. Compared case-insensitively.
	Network string
	// Subnet is the network's IPv4 subnet: PTR queries (in-addr.arpa) for
	// its addresses are answered locally and never forwarded.
	Subnet netip.Prefix
	// Upstreams are the forwarders for other names, tried in order.
	// Empty means other names are REFUSED.
	Upstreams []netip.AddrPort
	// Forward enables forwarding. False (a network without egress) answers
	// other names with REFUSED.
	Forward bool
	// Isolated lists further domains that are answered NXDOMAIN and never
	// forwarded, typically the names of the host's other networks, so that
	// NAME.OTHERNET cannot be probed through an upstream. Case-insensitive,
	// without trailing dot.
	Isolated []string
	// TTL of local answers in seconds; 0 means DefaultTTL.
	TTL uint32
	// Timeout bounds one upstream attempt (UDP plus a TCP retry after a
	// truncated answer); 0 means DefaultTimeout. A forwarded query takes at
	// most Timeout × len(Upstreams).
	Timeout time.Duration
	// Dial opens connections to upstreams ("udp" or "tcp", "IP:PORT");
	// nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxTCPConns caps concurrent TCP connections; connections over the cap
	// are closed at once. 0 means DefaultMaxTCPConns.
	MaxTCPConns int
	// TCPIdle closes a TCP connection that sends no query for this long;
	// 0 means DefaultTCPIdle.
	TCPIdle time.Duration
	// Crash receives panics of the server's goroutines. A UDP reader or
	// the TCP accept loop that panics is reported to Crash.Died; a panic
	// while serving one TCP connection or forwarding one query is logged,
	// counted under RecoveredTCP or RecoveredForward and ends only that
	// connection or query.
	Crash safe.Reporter
}

// Kinds under which Config.Crash counts recovered panics.
const (
	// RecoveredTCP is a panic while serving one TCP connection.
	RecoveredTCP = "dns tcp"
	// RecoveredForward is a panic while forwarding one UDP query.
	RecoveredForward = "dns forward"
)

// ErrServing is returned by Serve when it is called a second time.
var ErrServing = errors.New("resolver: already serving")

// Server answers DNS for one network. Its methods are safe for concurrent
// use. It owns the conns given to New and closes them in Close.
type Server struct {
	pc    net.PacketConn
	ln    net.Listener
	names Names
	cfg   Config
	l     *slog.Logger

	network   string                    // lower-case Config.Network, the key passed to Names
	domain    []byte                    // network as bytes, for suffix checks on query names
	isolated  atomic.Pointer[isolation] // lower-case Config.Isolated, replaced by SetIsolated
	upstreams []string                  // Config.Upstreams formatted once
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)

	// rr is the round-robin counter: each answer with several addresses
	// starts at rr mod n, so concurrent queries rotate without a lock.
	rr atomic.Uint32

	st       counters
	warnRate limiter

	ctx    context.Context // canceled by Close; bounds upstream exchanges
	cancel context.CancelFunc

	fwdSem chan struct{} // bounds concurrent UDP forwards
	tcpSem chan struct{} // bounds concurrent TCP connections

	wg      sync.WaitGroup // every goroutine Serve started
	serving atomic.Bool    // set by the first Serve; a second one fails
	closed  atomic.Bool    // set by Close; loops read it to tell a closed conn from a failure
	once    sync.Once      // Close runs once

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open TCP connections, closed by Close
}

// maxForwards bounds UDP queries being forwarded at once; over it queries
// get SERVFAIL at once rather than a goroutine each.
const maxForwards = 256

// New returns a Server for cfg answering from names. Either conn may be nil;
// the Server owns both. l receives rate-limited warnings and Debug details;
// it should already carry the network's context. A nil l discards logs.
func New(pc net.PacketConn, ln net.Listener, names Names, cfg Config, l *slog.Logger) *Server {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxTCPConns <= 0 {
		cfg.MaxTCPConns = DefaultMaxTCPConns
	}
	if cfg.TCPIdle <= 0 {
		cfg.TCPIdle = DefaultTCPIdle
	}
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		pc:      pc,
		ln:      ln,
		names:   names,
		cfg:     cfg,
		l:       l,
		network: strings.ToLower(strings.TrimSuffix(cfg.Network, ".")),
		dial:    cfg.Dial,
		fwdSem:  make(chan struct{}, maxForwards),
		tcpSem:  make(chan struct{}, cfg.MaxTCPConns),
		conns:   make(map[net.Conn]struct{}),
	}
	s.domain = []byte(s.network)
	s.SetIsolated(cfg.Isolated)
	for _, u := range cfg.Upstreams {
		s.upstreams = append(s.upstreams, u.String())
	}
	if s.dial == nil {
		var d net.Dialer
		s.dial = d.DialContext
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// forwarding reports whether other names are forwarded rather than refused.
func (s *Server) forwarding() bool {
	return s.cfg.Forward && len(s.upstreams) > 0
}

// Serve serves UDP and TCP until Close and returns after both have stopped
// and every goroutine it started has ended. It returns nil after Close, or
// the error that stopped a conn (the server is then closed).
func (s *Server) Serve() error {
	if !s.serving.CompareAndSwap(false, true) {
		return ErrServing
	}
	errc := make(chan error, 8)
	run := func(f func() error) {
		s.wg.Add(1)
		s.cfg.Crash.Go("dns "+s.cfg.Network, func() {
			defer s.wg.Done()
			if err := f(); err != nil {
				errc <- err
				s.Close()
			}
		})
	}
	if s.pc != nil {
		for range udpReaders() {
			run(s.routineUDP)
		}
	}
	if s.ln != nil {
		run(s.routineTCP)
	}
	if s.closed.Load() {
		s.Close() // closed before the goroutines started: they exit at once
	}
	s.wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// Close stops the server: it closes both conns and every TCP connection
// and cancels upstream exchanges. It is idempotent and does not wait; Serve
// returns once everything has stopped.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		if s.pc != nil {
			s.pc.Close()
		}
		if s.ln != nil {
			s.ln.Close()
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return nil
}

// limiter lets one event through per interval; it rate-limits warnings
// about conditions that may repeat per query.
type limiter struct {
	next atomic.Int64 // unix nanoseconds before which events are suppressed
}

const warnInterval = 10 * time.Second

func (lm *limiter) allow() bool {
	now := time.Now().UnixNano()
	n := lm.next.Load()
	return now >= n && lm.next.CompareAndSwap(n, now+int64(warnInterval))
}

// SetIsolated replaces Config.Isolated, for a host whose set of networks
// changed. It is safe to call while the server serves.
func (s *Server) SetIsolated(domains []string) {
	var iso isolation
	for _, d := range domains {
		if d = strings.ToLower(strings.Trim(d, ".")); d != "" {
			iso.wire = append(iso.wire, []byte(d))
			iso.names = append(iso.names, d)
		}
	}
	s.isolated.Store(&iso)
}

// isolation is one value of Config.Isolated, replaced as a whole: the
// domains as bytes for suffix checks and as strings for Names, index for
// index.
type isolation struct {
	wire  [][]byte
	names []string
}

// Shared is implemented by Names that know which clients are attached to
// several networks. A server whose Names implements it answers NAME.OTHER,
// for an isolated network OTHER, to a client for which Shares reports
// true: a container on blue and red resolves both networks' names through
// blue's gateway, while a container on blue alone still gets NXDOMAIN.
type Shared interface {
	// Shares reports whether client, an address on network, belongs to a
	// container that is also attached to other.
	Shares(network string, client netip.Addr, other string) bool
}

// shares reports whether client may resolve names of the isolated
// network other.
func (s *Server) shares(client netip.Addr, other string) bool {
	sh, ok := s.names.(Shared)
	return ok && client.IsValid() && sh.Shares(s.network, client, other)
}
