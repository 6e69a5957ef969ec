package resolver

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/miekg/dns"
)

const (
	maxTCPQueries  = 256             // queries served on one TCP connection before it is closed
	tcpWriteWait   = 5 * time.Second // bound on writing one TCP answer
	maxReadErrors  = 100             // consecutive read/accept errors before a loop gives up
	readErrBackoff = 10 * time.Millisecond
)

// udpReaders is the number of goroutines reading the UDP conn: local
// answers are built on the reading goroutine, so more readers use more
// cores.
func udpReaders() int { return min(runtime.GOMAXPROCS(0), 4) }

// udpAddrPortConn is implemented by *net.UDPConn; it reads and writes
// without allocating a net.Addr per datagram.
type udpAddrPortConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// routineUDP reads queries, answers local ones in place and hands queries
// for upstreams to a goroutine each (at most maxForwards at once).
func (s *Server) routineUDP() error {
	buf := make([]byte, maxMsgSize)
	out := make([]byte, 0, maxMsgSize)
	fast, _ := s.pc.(udpAddrPortConn)
	var q query
	errs := 0
	for {
		var (
			n   int
			ap  netip.AddrPort
			ad  net.Addr
			err error
		)
		if fast != nil {
			n, ap, err = fast.ReadFromUDPAddrPort(buf)
		} else {
			n, ad, err = s.pc.ReadFrom(buf)
		}
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errs++; errs > maxReadErrors {
				return err
			}
			s.warn("udp read failed", "", err)
			time.Sleep(readErrBackoff)
			continue
		}
		errs = 0
		resp, res, fwd := s.answer(buf[:n], out, udp, clientAddr(ap, ad), &q)
		if fwd {
			s.forwardUDP(buf[:n], &q, fast, ap, ad)
			continue
		}
		s.countUDP(res, resp)
		if resp != nil {
			s.writeUDP(resp, fast, ap, ad)
		}
	}
}

// countUDP counts a UDP answer, noting truncation.
func (s *Server) countUDP(res result, resp []byte) {
	s.st.count(udp, res)
	if len(resp) > 3 && resp[2]&(flagTC>>8) != 0 {
		s.st.truncated.Add(1)
	}
}

func (s *Server) writeUDP(b []byte, fast udpAddrPortConn, ap netip.AddrPort, ad net.Addr) {
	var err error
	if fast != nil {
		_, err = fast.WriteToUDPAddrPort(b, ap)
	} else {
		_, err = s.pc.WriteTo(b, ad)
	}
	if err != nil && !s.closed.Load() {
		s.warn("udp write failed", "", err)
	}
}

// forwardUDP answers a query for an upstream on its own goroutine, or with
// SERVFAIL at once when maxForwards are already in flight.
func (s *Server) forwardUDP(msg []byte, q *query, fast udpAddrPortConn, ap netip.AddrPort, ad net.Addr) {
	select {
	case s.fwdSem <- struct{}{}:
	default:
		var r reply
		r.start(make([]byte, 0, 512), msg, q, udpLimit(q), true)
		s.st.count(udp, resServFail)
		s.writeUDP(r.finish(q, s.flags(0), rcodeServFail), fast, ap, ad)
		return
	}
	msg = append([]byte(nil), msg...)
	qc := *q
	s.wg.Add(1)
	go func() {
		defer s.cfg.Crash.Recover(RecoveredForward, nil)
		defer s.wg.Done()
		defer func() { <-s.fwdSem }()
		resp, res := s.forward(s.ctx, msg, &qc, make([]byte, 0, 512), udpLimit(&qc))
		s.countUDP(res, resp)
		if !s.closed.Load() {
			s.writeUDP(resp, fast, ap, ad)
		}
	}()
}

// routineTCP accepts connections, closing those over MaxTCPConns at once.
func (s *Server) routineTCP() error {
	errs := 0
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closed.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if errs++; errs > maxReadErrors {
				return err
			}
			s.warn("tcp accept failed", "", err)
			time.Sleep(readErrBackoff)
			continue
		}
		errs = 0
		select {
		case s.tcpSem <- struct{}{}:
		default:
			s.st.tcpRejected.Add(1)
			c.Close()
			continue
		}
		if !s.track(c, true) {
			c.Close()
			<-s.tcpSem
			return nil
		}
		s.wg.Add(1)
		go s.routineConn(c)
	}
}

// track adds c to (add) or removes it from the set Close closes. It
// reports false once the server is closed.
func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closed.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// routineConn serves length-prefixed queries (RFC 1035 §4.2.2) on one TCP
// connection in order, until the client closes it, stays idle for TCPIdle,
// sends a bad frame or has sent maxTCPQueries.
func (s *Server) routineConn(c net.Conn) {
	defer s.cfg.Crash.Recover(RecoveredTCP, nil) // the defers below close c
	defer s.wg.Done()
	defer func() { <-s.tcpSem }()
	defer s.track(c, false)
	defer c.Close()
	var (
		q    query
		hdr  [2]byte
		buf  = make([]byte, 0, 512)
		out  = make([]byte, 0, 512)
		wbuf = make([]byte, 0, 514)
	)
	for range maxTCPQueries {
		c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdle))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n < headerLen {
			return
		}
		buf = append(buf[:0], make([]byte, n)...)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		resp, res, fwd := s.answer(buf, out, tcp, clientAddr(netip.AddrPort{}, c.RemoteAddr()), &q)
		if fwd {
			resp, res = s.forward(s.ctx, buf, &q, out, maxMsgSize)
		}
		s.st.count(tcp, res)
		if resp == nil {
			continue
		}
		out = resp[:0] // keep a grown buffer
		wbuf = append(wbuf[:0], byte(len(resp)>>8), byte(len(resp)))
		wbuf = append(wbuf, resp...)
		c.SetWriteDeadline(time.Now().Add(tcpWriteWait))
		if _, err := c.Write(wbuf); err != nil {
			return
		}
	}
}

// Handler returns the server's query logic as a dns.Handler, for tests
// with a recording ResponseWriter or for serving from a dns.Server. The
// transport is taken from w.RemoteAddr (a *net.TCPAddr means TCP, anything
// else UDP). Queries for upstreams are forwarded on the calling goroutine.
// Results are counted in Stats.
func (s *Server) Handler() dns.Handler { return handler{s} }

type handler struct{ s *Server }

// ServeDNS packs r and answers it like a query read from a socket.
func (h handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s := h.s
	tr := udp
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		tr = tcp
	}
	msg, err := r.Pack()
	if err != nil {
		m := new(dns.Msg)
		m.SetRcodeFormatError(r)
		s.st.count(tr, resFormErr)
		w.WriteMsg(m)
		return
	}
	var q query
	resp, res, fwd := s.answer(msg, make([]byte, 0, 512), tr, clientAddr(netip.AddrPort{}, w.RemoteAddr()), &q)
	if fwd {
		limit := maxMsgSize
		if tr == udp {
			limit = udpLimit(&q)
		}
		resp, res = s.forward(s.ctx, msg, &q, make([]byte, 0, 512), limit)
	}
	if tr == udp {
		s.countUDP(res, resp)
	} else {
		s.st.count(tr, res)
	}
	if resp != nil {
		w.Write(resp)
	}
}

// AnswerLocal answers a DNS query received over UDP from the overlay's
// own names, appending the reply to out[:0], so that a caller that sees
// the packet first (the switch, before the gateway's stack) can answer
// without a socket. ok is false when the query needs the usual path: a
// name for the upstream servers, or a packet to drop; the caller then
// delivers the packet to the server's socket as usual. It never blocks,
// counts the query like any other, and is safe for concurrent use.
func (s *Server) AnswerLocal(msg, out []byte) (resp []byte, ok bool) {
	return s.AnswerLocalFrom(netip.Addr{}, msg, out)
}

// AnswerLocalFrom is AnswerLocal for a query from client, the sender's
// IPv4 address, which lets a client attached to several networks resolve
// the names of all of them here (see Shared).
func (s *Server) AnswerLocalFrom(client netip.Addr, msg, out []byte) (resp []byte, ok bool) {
	return s.AnswerLocalWith(new(Scratch), client, msg, out)
}

// Scratch is the working memory of one answer (the parsed question). A
// caller that answers many queries, such as a switch's port reader, keeps
// one and passes it to AnswerLocalWith and AnswerOwnWith so that an answer
// allocates nothing. The zero value is ready for use; it keeps nothing of
// a query once the call returns. Not safe for concurrent use.
type Scratch struct {
	q query
}

// AnswerLocalWith is AnswerLocalFrom with the caller's Scratch: it
// allocates nothing.
func (s *Server) AnswerLocalWith(sc *Scratch, client netip.Addr, msg, out []byte) (resp []byte, ok bool) {
	resp, res, fwd := s.answer(msg, out, udp, client, &sc.q)
	if fwd || resp == nil {
		return nil, false
	}
	s.countUDP(res, resp)
	return resp, true
}

// AnswerOwnFrom answers, like AnswerLocalFrom, a query from client that
// was sent to another DNS server, but only when the name is the overlay's
// own (a name or alias of the network, or one of a network client shares
// with it): then the reply says what this server would say, an address or
// no data of that type. ok is false for every other name, which the
// caller lets through to the server it was sent to: a stub resolver that
// was not pointed at the gateway (Docker's, which forwards from the
// container's namespace to the host's servers) still finds the overlay's
// names, while every other name is answered where it was asked. It never
// blocks and is safe for concurrent use.
func (s *Server) AnswerOwnFrom(client netip.Addr, msg, out []byte) (resp []byte, ok bool) {
	return s.AnswerOwnWith(new(Scratch), client, msg, out)
}

// AnswerOwnWith is AnswerOwnFrom with the caller's Scratch: it allocates
// nothing.
func (s *Server) AnswerOwnWith(sc *Scratch, client netip.Addr, msg, out []byte) (resp []byte, ok bool) {
	resp, res, fwd := s.answer(msg, out, udp, client, &sc.q)
	if fwd || resp == nil || (res != resNoError && res != resNoData) {
		return nil, false
	}
	s.countUDP(res, resp)
	return resp, true
}

// clientAddr returns the IP address of a query's sender, from ap when it
// is valid, else from ad; the zero Addr when neither names one.
func clientAddr(ap netip.AddrPort, ad net.Addr) netip.Addr {
	if ap.IsValid() {
		return ap.Addr().Unmap()
	}
	switch a := ad.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
