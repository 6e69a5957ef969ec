package tunnel

import (
	"context"
	"errors"
	"net"
	"time"
)

// udpFlow is one source address of a UDP door and its dialled conn.
type udpFlow struct {
	up   net.Conn
	from net.Addr // where answers go
}

// relayUDP reads datagrams from the door's socket and relays each source
// address's to a conn of its own, dialled at its first datagram; answers
// go back from the door's socket. A flow ends after doorUDPIdle without
// an answer; at doorMaxConns flows new sources are dropped.
func (d *door) relayUDP(e *Engine, dial func(context.Context) (net.Conn, error)) {
	flows := map[string]*udpFlow{}
	done := make(chan string, doorMaxConns)
	buf := make([]byte, maxUDPDatagram)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			if d.ctx.Err() != nil || isClosed(err) {
				return
			}
			continue
		}
	reap:
		for {
			select {
			case k := <-done:
				delete(flows, k)
			default:
				break reap
			}
		}
		key := from.String()
		f := flows[key]
		if f == nil {
			if len(flows) >= doorMaxConns {
				continue
			}
			ctx, cancel := context.WithTimeout(d.ctx, doorDialTime)
			up, err := dial(ctx)
			cancel()
			if err != nil {
				continue
			}
			if !d.track(up) {
				up.Close()
				continue
			}
			f = &udpFlow{up: up, from: from}
			flows[key] = f
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer e.Reporter().Recover("door flow", func() { up.Close() })
				d.routineUDPAnswers(f)
				d.untrack(up)
				up.Close()
				done <- key
			}()
		}
		f.up.Write(buf[:n])
	}
}

// routineUDPAnswers relays f's answers back to its source until the flow
// is idle or closed.
func (d *door) routineUDPAnswers(f *udpFlow) {
	buf := make([]byte, maxUDPDatagram)
	for {
		f.up.SetReadDeadline(time.Now().Add(doorUDPIdle))
		n, err := f.up.Read(buf)
		if err != nil {
			return
		}
		if _, err := d.pc.WriteTo(buf[:n], f.from); err != nil && d.ctx.Err() != nil {
			return
		}
	}
}

// isClosed reports an error of a closed socket, host or userspace.
func isClosed(err error) bool {
	return err != nil && errors.Is(err, net.ErrClosed)
}
