package crypto

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

// addrBind narrows wireguard-go's StdNetBind, which always listens on every
// address of the port, to one local address: packets that arrived for
// another address (known from IP_PKTINFO, which StdNetBind asks for) are
// given size 0, which wireguard-go skips as too short. Sending is left to
// the kernel's route choice, or to the sticky source of the peer's last
// packet. Only used when Config.ListenAddr is set: wrapping the bind turns
// off wireguard-go's route listener, which only watches a bare StdNetBind.
type addrBind struct {
	conn.Bind
	local netip.Addr
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
