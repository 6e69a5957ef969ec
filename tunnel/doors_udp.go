package tunnel

import (
	"context"
	"errors"
	"net"

	"github.com/vxwire/vxwire/internal/relay"
)

// relayUDP relays the datagrams of the door's socket (relay.ServeDatagrams):
// each source address's go to a conn of its own, dialled at its first
// datagram; answers go back from the door's socket. A flow ends after
// doorUDPIdle without a datagram either way; at doorMaxConns flows new
// sources are dropped.
func (d *door) relayUDP(e *Engine, dial func(context.Context) (net.Conn, error)) {
	relay.ServeDatagrams(d.pc, relay.Datagrams{
		Idle:     doorUDPIdle,
		MaxFlows: doorMaxConns,
		Done:     d.ctx.Done(),
		Dial: func() (net.Conn, error) {
			ctx, cancel := context.WithTimeout(d.ctx, doorDialTime)
			defer cancel()
			up, err := dial(ctx)
			if err != nil {
				return nil, err
			}
			if !d.track(up, true) { // Go below runs its goroutine
				up.Close()
				return nil, errDoorStopping
			}
			return up, nil
		},
		Go: func(up net.Conn, fn func()) {
			go func() {
				defer d.wg.Done()
				defer d.untrack(up)
				defer e.Reporter().Recover("door flow", func() { up.Close() })
				fn()
			}()
		},
	})
}

// errDoorStopping refuses a flow of a door that is stopping or full.
var errDoorStopping = errors.New("the door is stopping or full")
