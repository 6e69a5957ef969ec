package tunnel

// Forwards and exposes: the laptop's fixed doors between a local port and
// the overlay, through the host endpoint of a network.
//
//	[[forward]]  127.0.0.1:8080 (host)  ──▶  host endpoint ──▶ web:80 (overlay)
//	[[expose]]   host endpoint :3000 (overlay)  ──▶  127.0.0.1:3000 (host)
//
// Both are one listener and one dial per connection (TCP) or per source
// address (UDP); relayTCP and relayUDP do the work for either direction.
// A forward resolves its name at each connection, from the snapshot, so
// it follows the endpoint when it moves. apply starts and stops doors to
// match the config file; an expose restarts with its host endpoint.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/relay"
)

// Bounds of one door.
const (
	doorMaxConns = 512              // TCP connections or UDP flows at once
	doorDialTime = 15 * time.Second // one dial
	doorUDPIdle  = 60 * time.Second // a UDP flow without datagrams
	doorTCPIdle  = 2 * time.Hour    // a TCP connection without data
)

// doorKey identifies a running door: its table and, for an expose, the
// host endpoint port it listens on.
type doorKey struct {
	fwd  config.Forward
	exp  config.Expose
	host *port
}

// door is a running forward or expose.
type door struct {
	ln     net.Listener   // TCP, or nil
	pc     net.PacketConn // UDP, or nil
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open relayed conns, both sides; guarded by mu
	wg    sync.WaitGroup
}

// unlockedApplyDoors starts the forwards and exposes of cfg that are not
// running and stops those that went away or whose host endpoint changed.
func (e *Engine) unlockedApplyDoors(cfg *config.Config) {
	want := map[doorKey]string{}
	for i, f := range cfg.Forwards {
		want[doorKey{fwd: f}] = fmt.Sprintf("forward[%d]", i)
	}
	hosts := e.sw.snap.Load().hosts
	for i, x := range cfg.Exposes {
		field := fmt.Sprintf("expose[%d]", i)
		if hosts[x.Network] == nil { // its host endpoint failed to attach
			e.l.Error("cannot open door", "error", cfg.Errorf(field, "network %s: %v", x.Network, errNoHostEndpoint))
			continue
		}
		want[doorKey{exp: x, host: hosts[x.Network]}] = field
	}
	if e.doors == nil {
		e.doors = map[doorKey]*door{}
	}
	for k, d := range e.doors {
		if _, ok := want[k]; !ok {
			d.stop()
			delete(e.doors, k)
		}
	}
	for k, field := range want {
		if e.doors[k] != nil {
			continue
		}
		d, err := e.openDoor(k)
		if err != nil {
			e.l.Error("cannot open door", "error", cfg.Errorf(field, "%v", err))
			continue
		}
		e.doors[k] = d
	}
}

// unlockedCloseDoors stops every door.
func (e *Engine) unlockedCloseDoors() {
	for k, d := range e.doors {
		d.stop()
		delete(e.doors, k)
	}
}

// openDoor opens the listener of k and starts serving it.
func (e *Engine) openDoor(k doorKey) (*door, error) {
	d := &door{conns: map[net.Conn]struct{}{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	var dial func(ctx context.Context) (net.Conn, error)
	var err error
	var what string
	if k.host == nil { // a forward: host listener, overlay dial
		f := k.fwd
		what = fmt.Sprintf("forward %s %s to %s in %s", f.Proto, f.Listen, f.To, f.Network)
		dial = func(ctx context.Context) (net.Conn, error) { return e.dialForward(ctx, f) }
		if f.Proto == "udp" {
			d.pc, err = net.ListenPacket("udp4", f.Listen.String())
		} else {
			d.ln, err = net.Listen("tcp4", f.Listen.String())
		}
	} else { // an expose: host endpoint listener, host dial
		x := k.exp
		what = fmt.Sprintf("expose %s %s:%d to %s", x.Proto, k.host.addr.Addr(), x.Port, x.To)
		var dl net.Dialer
		dial = func(ctx context.Context) (net.Conn, error) { return dl.DialContext(ctx, x.Proto+"4", x.To.String()) }
		if x.Proto == "udp" {
			d.pc, err = k.host.host.ListenUDP(x.Port)
		} else {
			d.ln, err = k.host.host.ListenTCP(x.Port)
		}
	}
	if err != nil {
		d.cancel()
		return nil, err
	}
	if d.ln != nil {
		e.goSafe(what, func() { d.relayTCP(e, dial) })
	} else {
		e.goSafe(what, func() { d.relayUDP(e, dial) })
	}
	e.l.Info("door open", "door", what)
	return d, nil
}

// dialForward dials f's destination through its network's host endpoint.
func (e *Engine) dialForward(ctx context.Context, f config.Forward) (net.Conn, error) {
	snap := e.sw.snap.Load()
	from := snap.hosts[f.Network]
	if from == nil {
		return nil, fmt.Errorf("network %s: %w", f.Network, errNoHostEndpoint)
	}
	to, err := netip.ParseAddr(f.ToHost)
	if err != nil {
		addrs := snap.names.fwd[f.Network][f.ToHost]
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%s: %w in network %s", f.ToHost, errNoSuchName, f.Network)
		}
		to = addrs[0]
	}
	return dialOverlay(ctx, f.Proto, overlayDest{network: f.Network, from: from, to: to}, f.ToPort)
}

// stop closes the listener and every relayed connection, and waits for
// the door's goroutines.
func (d *door) stop() {
	d.cancel()
	if d.ln != nil {
		d.ln.Close()
	}
	if d.pc != nil {
		d.pc.Close()
	}
	d.mu.Lock()
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// track registers c so that stop closes it and, if flow is set, adds the
// goroutine about to serve it to wg, for stop to wait for; false once
// stopping. Both happen under mu, which stop takes after it cancels and
// before it waits, so no wg.Add can follow stop's Wait.
func (d *door) track(c net.Conn, flow bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil || len(d.conns) >= 2*doorMaxConns {
		return false
	}
	d.conns[c] = struct{}{}
	if flow {
		d.wg.Add(1)
	}
	return true
}

func (d *door) untrack(cs ...net.Conn) {
	d.mu.Lock()
	for _, c := range cs {
		delete(d.conns, c)
	}
	d.mu.Unlock()
}

// relayTCP accepts connections and relays each to a new dial.
func (d *door) relayTCP(e *Engine, dial func(context.Context) (net.Conn, error)) {
	sem := make(chan struct{}, doorMaxConns)
	for {
		c, err := d.ln.Accept()
		if err != nil {
			if d.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // at the bound: refuse rather than queue
			continue
		}
		if !d.track(c, true) {
			<-sem
			c.Close()
			continue
		}
		go func() {
			defer d.wg.Done()
			defer func() { <-sem }()
			defer e.Reporter().Recover("door connection", func() { c.Close() })
			ctx, cancel := context.WithTimeout(d.ctx, doorDialTime)
			up, err := dial(ctx)
			cancel()
			if err != nil || !d.track(up, false) {
				if up != nil {
					up.Close()
				}
				d.untrack(c)
				c.Close()
				return
			}
			relay.Pipe(c, up, doorTCPIdle)
			d.untrack(c, up)
		}()
	}
}
