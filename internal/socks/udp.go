package socks

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxDatagram is the largest UDP payload relayed, header included.
const maxDatagram = 65535

// association is one UDP ASSOCIATE: a relay socket on the listener's
// address, the client it serves, and one connected conn per destination.
// It lives as long as the client's TCP connection (RFC 1928 §7).
type association struct {
	s      *Server
	ctl    net.Conn // the client's TCP connection; the association ends with it
	pc     *net.UDPConn
	client netip.Addr // the TCP client's address: the only source accepted

	mu      sync.Mutex
	from    netip.AddrPort    // the client's UDP address, fixed by its first datagram; guarded by mu
	targets map[Addr]net.Conn // guarded by mu
	closed  bool              // guarded by mu
	wg      sync.WaitGroup    // target readers
}

// associate serves a UDP ASSOCIATE request of client c. hint is the
// address the client says it will send from; a zero port or address is
// learnt from the first datagram.
func (s *Server) associate(c net.Conn, hint Addr) {
	local, _ := netip.ParseAddrPort(c.LocalAddr().String())
	remote, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
	if err != nil {
		s.refused.Add(1)
		s.reply(c, RepGeneralFailure)
		return
	}
	a := &association{s: s, ctl: c, pc: pc, client: remote.Addr().Unmap(), targets: map[Addr]net.Conn{}}
	if hint.IP.IsValid() && !hint.IP.IsUnspecified() && hint.Port != 0 {
		a.from = netip.AddrPortFrom(hint.IP.Unmap(), hint.Port)
	}
	var b [32]byte
	bind, _ := netip.ParseAddrPort(pc.LocalAddr().String())
	if _, err := c.Write(AppendReply(b[:0], RepSucceeded, bind)); err != nil {
		pc.Close()
		return
	}
	s.associationsOK.Add(1)
	c.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.routineFromClient()
	}()
	// The association ends with the TCP connection: wait for EOF (the
	// client sends nothing more on it).
	io.Copy(io.Discard, c)
	a.close()
	<-done
	a.wg.Wait()
}

// close ends the association: its socket, every target and the
// client's TCP connection.
func (a *association) close() {
	a.mu.Lock()
	a.closed = true
	targets := a.targets
	a.targets = nil
	a.mu.Unlock()
	a.pc.Close()
	a.ctl.Close()
	for _, t := range targets {
		t.Close()
	}
}

// routineFromClient relays the client's datagrams to their targets.
func (a *association) routineFromClient() {
	defer a.s.cfg.Crash.Recover(RecoveredConn, a.close)
	buf := make([]byte, maxDatagram)
	for {
		a.pc.SetReadDeadline(time.Now().Add(a.s.cfg.Idle))
		n, from, err := a.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			a.close()
			return
		}
		if !a.admit(netip.AddrPortFrom(from.Addr().Unmap(), from.Port())) {
			a.s.udpDropped.Add(1)
			continue
		}
		dst, payload, err := ParseUDP(buf[:n])
		if err != nil || buf[2] != 0 {
			a.s.udpDropped.Add(1)
			continue
		}
		t := a.target(dst)
		if t == nil {
			a.s.udpDropped.Add(1)
			continue
		}
		t.Write(payload)
	}
}

// admit reports whether a datagram from may be relayed: it must come
// from the TCP client's address, and from the first datagram's port on.
func (a *association) admit(from netip.AddrPort) bool {
	if from.Addr() != a.client {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.from.IsValid() {
		a.from = from
	}
	return a.from == from
}

// target returns the conn to dst, dialling it the first time; nil when
// it cannot be dialled or the association has MaxUDPTargets already.
func (a *association) target(dst Addr) net.Conn {
	a.mu.Lock()
	t, ok := a.targets[dst]
	full := len(a.targets) >= a.s.cfg.MaxUDPTargets
	a.mu.Unlock()
	if ok {
		return t
	}
	if full {
		return nil
	}
	ctx, cancel := context.WithTimeout(a.s.ctx, a.s.cfg.DialTimeout)
	t, err := a.s.cfg.Dial(ctx, "udp", dst)
	cancel()
	if err != nil {
		return nil
	}
	a.mu.Lock()
	if a.closed || a.targets[dst] != nil {
		a.mu.Unlock()
		t.Close()
		return nil
	}
	a.targets[dst] = t
	a.wg.Add(1)
	a.mu.Unlock()
	go a.routineFromTarget(t, dst)
	return t
}

// routineFromTarget relays a target's datagrams back to the client, with
// the header naming the address they came from.
func (a *association) routineFromTarget(t net.Conn, dst Addr) {
	defer a.wg.Done()
	defer a.s.cfg.Crash.Recover(RecoveredConn, func() { t.Close() })
	src := dst
	if ap, err := netip.ParseAddrPort(t.RemoteAddr().String()); err == nil {
		src = Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
	}
	hdr := AppendUDPHeader(nil, src)
	buf := make([]byte, maxDatagram)
	copy(buf, hdr)
	for {
		t.SetReadDeadline(time.Now().Add(a.s.cfg.Idle))
		n, err := t.Read(buf[len(hdr):])
		if err != nil {
			return
		}
		a.mu.Lock()
		to := a.from
		a.mu.Unlock()
		if to.IsValid() {
			a.pc.WriteToUDPAddrPort(buf[:len(hdr)+n], to)
		}
	}
}
