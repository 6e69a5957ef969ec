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

// maxProbed bounds the destinations a pathProbe remembers.
const maxProbed = 1024

// pathProbe sends, once a second per destination, the largest datagram of
// a batch alone (encap.SplitProbe), since the bind coalesces a batch into
// UDP GSO sends, which carry no DF: the kernel then learns the path
// that the engine reads to answer containers with "fragmentation needed",
// as tunnel/switch_mtu.go does for plain networks.
type pathProbe struct {
	mu   sync.Mutex
	last map[netip.Addr]int64 // unix nanoseconds of the last probe
}

// sender is the sending half of a conn.Bind.
type sender interface {
	Send(bufs [][]byte, ep conn.Endpoint) error
}

// send sends bufs to ep through inner, now being the time in unix
// nanoseconds.
func (p *pathProbe) send(inner sender, bufs [][]byte, ep conn.Endpoint, now int64) error {
	parts, ok := encap.SplitProbe(bufs)
	if !ok || !p.due(ep.DstIP(), now) {
		return inner.Send(bufs, ep)
	}
	var err error
	for _, part := range parts {
		if len(part) == 0 {
			continue
		}
		if serr := inner.Send(part, ep); serr != nil && err == nil {
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
// wireguard-go's StdNetBind needs it (addrBind); on Linux, encap.StdConn
// does the same itself and more finely (only the datagrams above the path
// go without GSO).
func sendFitting(inner sender, bufs [][]byte, ep conn.Endpoint) error {
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
