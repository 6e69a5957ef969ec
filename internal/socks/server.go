package socks

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vxwire/vxwire/internal/relay"
	"github.com/vxwire/vxwire/internal/safe"
)

// Defaults of Config's zero fields.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultDialTimeout      = 15 * time.Second
	DefaultMaxConns         = 512
	DefaultMaxUDPTargets    = 64
	DefaultIdle             = 2 * time.Hour
)

// RecoveredConn is the kind under which a panic serving one client is
// counted (safe.Reporter.Recover).
const RecoveredConn = "socks connection"

// ReplyError is an error of Dial that names the reply the client gets.
type ReplyError struct {
	Code byte
	Err  error
}

// Error implements error.
func (e *ReplyError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *ReplyError) Unwrap() error { return e.Err }

// Refuse returns an error that Dial hands back to have the client
// answered with reply code.
func Refuse(code byte, err error) error { return &ReplyError{Code: code, Err: err} }

// Config configures a Server.
type Config struct {
	// Dial opens a connection to dst: network is "tcp" (CONNECT) or
	// "udp" (one destination of an association; the conn is connected).
	// A *ReplyError chooses the reply; other errors answer "connection
	// refused" for ECONNREFUSED and "host unreachable" otherwise.
	// Required.
	Dial func(ctx context.Context, network string, dst Addr) (net.Conn, error)
	// HandshakeTimeout bounds the greeting and the request together,
	// from accept: a client that sends garbage or trickles bytes
	// (slowloris) is cut off at it. Default 10 s.
	HandshakeTimeout time.Duration
	// DialTimeout bounds one Dial. Default 15 s.
	DialTimeout time.Duration
	// MaxConns bounds the clients served at once; one more is closed at
	// accept and counted. Default 512.
	MaxConns int
	// MaxUDPTargets bounds the destinations of one UDP association.
	// Default 64.
	MaxUDPTargets int
	// Idle ends a relayed connection or association after this long
	// without traffic. Default 2 h.
	Idle time.Duration
	// Crash receives panics of the per-client goroutines.
	Crash safe.Reporter
}

// Stats are a Server's counters.
type Stats struct {
	Accepted       uint64 // clients accepted
	Open           uint64 // clients being served now
	OverLimit      uint64 // clients closed at accept: MaxConns reached
	BadHandshake   uint64 // clients cut off: malformed, wrong version, no acceptable method, deadline
	Refused        uint64 // requests answered with an error reply
	UDPDropped     uint64 // association datagrams dropped: malformed, fragment, foreign source, target limit
	ConnectsOK     uint64 // CONNECTs relayed
	AssociationsOK uint64 // UDP ASSOCIATEs served
}

// Server serves SOCKS5 on a listener. Its methods are safe for
// concurrent use.
type Server struct {
	l   *slog.Logger
	cfg Config
	ln  net.Listener
	sem chan struct{} // one slot per client served

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // clients being served and their upstreams; guarded by mu

	accepted, overLimit, badHandshake, refused atomic.Uint64
	udpDropped, connectsOK, associationsOK     atomic.Uint64
}

// NewServer returns a server for ln; Serve runs it. A nil logger
// discards.
func NewServer(ln net.Listener, cfg Config, l *slog.Logger) *Server {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxUDPTargets <= 0 {
		cfg.MaxUDPTargets = DefaultMaxUDPTargets
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	s := &Server{l: l, cfg: cfg, ln: ln, sem: make(chan struct{}, cfg.MaxConns), conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Serve accepts clients until Close; it returns nil after Close, or the
// listener's error.
func (s *Server) Serve() error {
	backoff := 5 * time.Millisecond
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return err
		}
		backoff = 5 * time.Millisecond
		select {
		case s.sem <- struct{}{}:
		default:
			s.overLimit.Add(1)
			c.Close()
			continue
		}
		if !s.track(c) {
			<-s.sem
			c.Close()
			return nil
		}
		s.accepted.Add(1)
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// Close stops accepting, closes every client and waits for their
// goroutines.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Accepted: s.accepted.Load(), Open: uint64(len(s.sem)), OverLimit: s.overLimit.Load(),
		BadHandshake: s.badHandshake.Load(), Refused: s.refused.Load(), UDPDropped: s.udpDropped.Load(),
		ConnectsOK: s.connectsOK.Load(), AssociationsOK: s.associationsOK.Load(),
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serveConn runs one client: handshake under its deadline, then the
// command.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() { <-s.sem }()
	defer s.untrack(c)
	defer c.Close()
	defer s.cfg.Crash.Recover(RecoveredConn, func() { c.Close() })
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	req, ok := s.handshake(c)
	if !ok {
		return
	}
	switch req.Cmd {
	case CmdConnect:
		s.connect(c, req.Dst)
	case CmdUDPAssociate:
		s.associate(c, req.Dst)
	default:
		s.reply(c, RepCmdNotSupported)
	}
}

// handshake reads the greeting and the request; it answers and reports
// false when the client is to be dropped.
func (s *Server) handshake(c net.Conn) (Request, bool) {
	noAuth, err := ReadGreeting(c)
	if err != nil {
		s.badHandshake.Add(1)
		return Request{}, false
	}
	if !noAuth {
		s.badHandshake.Add(1)
		c.Write([]byte{Version, MethodNoAcceptable})
		return Request{}, false
	}
	if _, err := c.Write([]byte{Version, MethodNoAuth}); err != nil {
		return Request{}, false
	}
	req, err := ReadRequest(c)
	switch {
	case errors.Is(err, ErrCommand) || err == nil && req.Cmd == CmdBind:
		s.refused.Add(1)
		s.reply(c, RepCmdNotSupported)
		return req, false
	case errors.Is(err, ErrAddrType):
		s.refused.Add(1)
		s.reply(c, RepAddrTypeNotSupport)
		return req, false
	case err != nil:
		s.badHandshake.Add(1)
		return req, false
	}
	return req, true
}

// reply answers with code and no bound address.
func (s *Server) reply(c net.Conn, code byte) {
	var b [32]byte
	c.Write(AppendReply(b[:0], code, netip.AddrPortFrom(netip.IPv4Unspecified(), 0)))
}

// replyCode is the reply for a Dial error.
func replyCode(err error) byte {
	var re *ReplyError
	switch {
	case errors.As(err, &re):
		return re.Code
	case errors.Is(err, syscall.ECONNREFUSED):
		return RepConnRefused
	}
	return RepHostUnreachable
}

// connect dials dst and relays.
func (s *Server) connect(c net.Conn, dst Addr) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.DialTimeout)
	up, err := s.cfg.Dial(ctx, "tcp", dst)
	cancel()
	if err != nil {
		s.refused.Add(1)
		if s.l.Enabled(context.Background(), slog.LevelDebug) {
			s.l.Debug("socks connect refused", "dst", dst.String(), "error", err)
		}
		s.reply(c, replyCode(err))
		return
	}
	if !s.track(up) {
		up.Close()
		return
	}
	defer s.untrack(up)
	var b [32]byte
	bind, _ := netip.ParseAddrPort(up.LocalAddr().String())
	if _, err := c.Write(AppendReply(b[:0], RepSucceeded, bind)); err != nil {
		up.Close()
		return
	}
	c.SetDeadline(time.Time{})
	s.connectsOK.Add(1)
	relay.Pipe(c, up, s.cfg.Idle)
}
