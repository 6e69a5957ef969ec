package crypto

import (
	"os"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/tun"
)

// memTUN is the in-memory tun.Device wireguard-go is built on: its Read
// side is the Device's transmit queue, its Write side validates inner
// packets and feeds the Device's receive queue. No kernel device exists.
//
// wireguard-go calls Read from one goroutine (RoutineReadFromTUN) and Write
// from one goroutine per peer (RoutineSequentialReceiver), concurrently.
type memTUN struct {
	d      *Device
	events chan tun.Event
	// batch is Read's room for the pkts it pops (one reader at a time).
	batch [maxBatch]*pkt

	closeOnce sync.Once
	closed    chan struct{}
}

var _ tun.Device = (*memTUN)(nil)

func newMemTUN(d *Device) *memTUN {
	return &memTUN{
		d:      d,
		events: make(chan tun.Event),
		closed: make(chan struct{}),
	}
}

func (t *memTUN) File() *os.File { return nil }

// Read hands wireguard-go the wrapped inner packets queued by
// Device.Write: it waits for some, then takes what is queued, up to
// len(bufs), in one pop.
func (t *memTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	q := t.d.txq
	batch := t.batch[:min(len(bufs), len(t.batch))]
	k := q.pop(batch, t.closed)
	if k == 0 {
		return 0, os.ErrClosed
	}
	n := 0
	for _, p := range batch[:k] {
		dst := bufs[n][offset:]
		if len(dst) >= p.n {
			sizes[n] = copy(dst, p.buf[:p.n])
			n++
		} else {
			t.d.stats.drop(DropTooBig, 1)
		}
	}
	q.release(batch[:k])
	return n, nil
}

// Write receives decrypted inner packets from wireguard-go (at
// bufs[i][offset:]), validates them, and queues the VXLAN datagrams they
// carry for Device.Read, handChunk at a time. The buffers belong to
// wireguard-go and are copied. Invalid packets are counted and dropped,
// never reported as an error, since wireguard-go would only log it.
func (t *memTUN) Write(bufs [][]byte, offset int) (int, error) {
	d := t.d
	q := d.rxq
	tab := d.table.Load()
	f := newFiller(q)
	defer f.done()
	inner := 0 // packets given to the inner stack
	for i, b := range bufs {
		payload, src, why := unwrap(b[offset:], tab.local)
		if (why == DropNotUDP || why == DropWrongPort) && d.inner != nil {
			// A well-formed IPv4 packet that is not VXLAN: the inner
			// stack's (it drops what is not to its address). Its
			// source is the peer's tunnel address: wireguard-go drops
			// what the peer's allowed-ips do not cover. Deliver
			// demultiplexes it on this goroutine into a socket, whose
			// receive buffer bounds what a peer can queue there.
			if s, ok := tab.bySrc[[4]byte(b[offset+12:offset+16])]; ok {
				s.received.Add(1)
			}
			d.inner.Deliver(b[offset:])
			inner++
			continue
		}
		if why != DropNone {
			d.stats.drop(why, 1)
			continue
		}
		s, ok := tab.bySrc[src]
		if !ok {
			d.stats.drop(DropUnknownSource, 1)
			continue
		}
		s.received.Add(1)
		if len(payload) > q.size {
			d.stats.drop(DropTooBig, 1)
			continue
		}
		p := f.next(len(bufs) - i)
		if p == nil {
			// After one wait per batch the rest drops at once, rather
			// than stall this peer's receiver further.
			d.stats.drop(DropQueueFull, 1)
			continue
		}
		p.n = copy(p.buf, payload)
		p.from = s.id
	}
	if inner > 0 {
		d.stats.innerRx.Add(uint64(inner))
	}
	return len(bufs), nil
}

// MTU reports the inner MTU; wireguard-go pads packets up to it.
func (t *memTUN) MTU() (int, error) { return t.d.mtu, nil }

func (t *memTUN) Name() (string, error) { return t.d.name, nil }

// Events never delivers an event: the Device brings wireguard-go up
// itself, so that a failure to bind is returned by New. It is closed by
// Close, which ends wireguard-go's event goroutine.
func (t *memTUN) Events() <-chan tun.Event { return t.events }

// Close is called by wireguard-go's Device.Close; it is idempotent.
func (t *memTUN) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		close(t.events)
	})
	return nil
}

// BatchSize is the batch wireguard-go moves per call, as for its bind.
func (t *memTUN) BatchSize() int { return conn.IdealBatchSize }
