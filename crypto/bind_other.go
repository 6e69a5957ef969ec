//go:build !linux

package crypto

import (
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// newBind returns wireguard-go's own bind, narrowed to local when it is a
// specific address.
func newBind(local netip.Addr) conn.Bind {
	bind := conn.NewDefaultBind()
	if local.IsValid() && !local.IsUnspecified() {
		return &addrBind{Bind: bind, local: local}
	}
	return bind
}

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

// fitting is an addrBind whose Send is sendFitting's.
type fitting addrBind

func (f *fitting) Send(bufs [][]byte, ep conn.Endpoint) error {
	return sendFitting(f.Bind, bufs, ep)
}

// Send implements conn.Bind.
func (b *addrBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	return b.probe.send((*fitting)(b), bufs, ep, time.Now().UnixNano())
}

// Open implements conn.Bind.
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
