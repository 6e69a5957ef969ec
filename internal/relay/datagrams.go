package relay

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Counters count a datagram listener's flows and bytes. Every field is
// atomic: readers load them while the listener runs.
type Counters struct {
	Accepted, Refused atomic.Uint64 // flows opened, and sources dropped at the bound
	Active            atomic.Int64  // flows open now
	BytesIn, BytesOut atomic.Uint64 // from the sources, and back to them
}

// Datagrams says how ServeDatagrams relays a listener's datagrams.
type Datagrams struct {
	// Idle ends a flow after that long without a datagram either way.
	Idle time.Duration
	// MaxFlows bounds the flows open at once; a new source beyond it is
	// dropped and counted as Refused.
	MaxFlows int
	// Dial opens a new flow's upstream, a conn whose Read and Write carry
	// one datagram each. On error the datagram is dropped.
	Dial func() (net.Conn, error)
	// Go runs fn, which relays the answers of the flow whose upstream is
	// up until the flow ends, in a new goroutine; nil uses the go
	// statement. It is called once for every conn Dial returns. fn
	// closes up on return, panic or not.
	Go func(up net.Conn, fn func())
	// Done, when closed, tells a read error of the listener that it was
	// closed on purpose (a userspace stack's socket reports no
	// net.ErrClosed).
	Done <-chan struct{}
	// Counters, if set, counts the flows and bytes.
	Counters *Counters
}

// flow is one source address of a datagram listener and its upstream.
type flow struct {
	up   net.Conn
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

// ServeDatagrams reads datagrams from pc until pc is closed, and relays
// each source address's to an upstream conn of its own, dialled at its
// first datagram; answers go back to the source from pc. Every open
// flow's upstream is closed on return.
func ServeDatagrams(pc net.PacketConn, o Datagrams) {
	if o.Counters == nil {
		o.Counters = new(Counters)
	}
	if o.Go == nil {
		o.Go = func(_ net.Conn, fn func()) { go fn() }
	}
	var mu sync.Mutex // guards flows, which the answer goroutines prune
	flows := make(map[netip.AddrPort]*flow)
	defer func() {
		mu.Lock()
		for _, f := range flows {
			f.up.Close()
		}
		mu.Unlock()
	}()
	buf := datagramBufs.Get().(*[datagramBuf]byte)
	defer datagramBufs.Put(buf)
	for {
		n, from, err := pc.ReadFrom(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) || closed(o.Done) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of buffers and the like
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		mu.Lock()
		f, full := flows[src], len(flows) >= o.MaxFlows
		mu.Unlock()
		if f == nil {
			if full {
				o.Counters.Refused.Add(1)
				continue
			}
			up, err := o.Dial() // no lock held: a dial may take a while
			if err != nil {
				continue
			}
			f = &flow{up: up}
			mu.Lock()
			flows[src] = f
			mu.Unlock()
			o.Counters.Accepted.Add(1)
			o.Counters.Active.Add(1)
			o.Go(up, func() {
				defer func() {
					mu.Lock()
					if flows[src] == f {
						delete(flows, src)
					}
					mu.Unlock()
					o.Counters.Active.Add(-1)
				}()
				defer up.Close()
				answers(pc, f, ua, &o)
			})
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := f.up.Write(buf[:n]); err == nil {
			o.Counters.BytesIn.Add(uint64(n))
		}
	}
}

// answers relays f's answers to its source until the flow idles out or
// its upstream fails.
func answers(pc net.PacketConn, f *flow, to net.Addr, o *Datagrams) {
	buf := datagramBufs.Get().(*[datagramBuf]byte)
	defer datagramBufs.Put(buf)
	for {
		f.up.SetReadDeadline(time.Now().Add(o.Idle))
		n, err := f.up.Read(buf[:])
		if err != nil {
			if isTimeout(err) && time.Since(time.Unix(0, f.last.Load())) < o.Idle {
				continue // the source sent meanwhile
			}
			return
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := pc.WriteTo(buf[:n], to); err == nil {
			o.Counters.BytesOut.Add(uint64(n))
		}
	}
}

// closed reports whether done is closed; a nil done never is.
func closed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}
