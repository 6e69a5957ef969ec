package crypto

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vxwire/vxwire/encap"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

// addrBind narrows wireguard-go's StdNetBind, which always listens on every
// address of the port, to one local address: packets that arrived for
// another address (known from IP_PKTINFO, which StdNetBind asks for) are
// given size 0, which wireguard-go skips as too short. Sending is left to
// the kernel's route choice, or to the sticky source of the peer's last
// packet, and keeps path MTU discovery going (pathProbe). Only used when
// Config.ListenAddr is set: wrapping the bind turns off wireguard-go's
// route listener, which only watches a bare StdNetBind.
type addrBind struct {
	conn.Bind
	local netip.Addr
	probe pathProbe
}

// Send implements conn.Bind.
func (b *addrBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	return b.probe.send(b.Bind, bufs, ep, time.Now().UnixNano())
}

// maxProbed bounds the destinations a pathProbe remembers.
const maxProbed = 1024

// pathProbe sends, once a second per destination, the largest datagram of
// a batch alone (encap.SplitProbe), since StdNetBind coalesces a batch
// into UDP GSO sends, which carry no DF: the kernel then learns the path
// that the engine reads to answer containers with "fragmentation needed",
// as tunnel/switch_mtu.go does for plain networks.
type pathProbe struct {
	mu   sync.Mutex
	last map[netip.Addr]int64 // unix nanoseconds of the last probe
}

// send sends bufs to ep through inner, now being the time in unix
// nanoseconds.
func (p *pathProbe) send(inner conn.Bind, bufs [][]byte, ep conn.Endpoint, now int64) error {
	parts, ok := encap.SplitProbe(bufs)
	if !ok || !p.due(ep.DstIP(), now) {
		return sendFitting(inner, bufs, ep)
	}
	var err error
	for _, part := range parts {
		if len(part) == 0 {
			continue
		}
		if serr := sendFitting(inner, part, ep); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// sendFitting sends bufs to ep through inner. When the kernel refuses the
// batch because a datagram is larger than the path MTU it has learnt
// (EMSGSIZE, or EINVAL for a GSO segment), the datagrams go again one by
// one, which the kernel fragments: without that, wireguard-go lost the
// whole batch, and every batch after it, until the containers sent less,
// and a TCP stream that lost its retransmissions too stalled for 20 s.
func sendFitting(inner conn.Bind, bufs [][]byte, ep conn.Endpoint) error {
	err := inner.Send(bufs, ep)
	if err == nil || len(bufs) < 2 || !(errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.EINVAL)) {
		return err
	}
	err = nil
	for i := range bufs {
		if serr := inner.Send(bufs[i:i+1], ep); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// due reports whether a probe to dst is due at now, and if so counts it
// as sent.
func (p *pathProbe) due(dst netip.Addr, now int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if last, ok := p.last[dst]; ok && now-last < int64(time.Second) {
		return false
	}
	if p.last == nil || len(p.last) >= maxProbed {
		// Peers that roam leave old addresses behind: start afresh
		// rather than grow.
		p.last = make(map[netip.Addr]int64)
	}
	p.last[dst] = now
	return true
}

func (b *addrBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err != nil {
		return nil, 0, err
	}
	for i, fn := range fns {
		fns[i] = b.filter(fn)
	}
	return fns, actual, nil
}

func (b *addrBind) filter(fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, err := fn(packets, sizes, eps)
		for i := 0; i < n; i++ {
			src := eps[i].SrcIP()
			if src.IsValid() && src.Unmap() != b.local {
				sizes[i] = 0
			}
		}
		return n, err
	}
}

// wgLogger adapts l to wireguard-go's printf-style logger. Its verbose
// output goes to Debug and is formatted only when Debug is enabled; its
// errors go to Warn, since most are about one peer (unreachable, bad
// packet) rather than about the daemon.
func wgLogger(l *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if l.Enabled(context.Background(), slog.LevelDebug) {
				l.Debug("wireguard", "event", fmt.Sprintf(format, args...))
			}
		},
		Errorf: func(format string, args ...any) {
			l.Warn("wireguard", "error", fmt.Sprintf(format, args...))
		},
	}
}
