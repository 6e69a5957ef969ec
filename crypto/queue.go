package crypto

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// queueLen is how many packets each direction holds between the caller
	// and WireGuard: as many as wireguard-go's own outbound and inbound
	// queues (1024).
	queueLen = 1024

	// queueWait bounds how long Write (and WireGuard's delivery to Read)
	// waits for a free packet when the queue is full before it drops. A
	// short wait turns a momentary burst into back-pressure instead of
	// loss; the bound keeps a stalled reader from stalling the writer.
	queueWait = 50 * time.Millisecond
)

// pkt is one datagram between the caller and WireGuard. buf is owned by
// the queue it belongs to and never changes; a pkt is owned by one
// goroutine at a time, passed along by channel sends.
type pkt struct {
	buf  []byte
	n    int            // bytes of buf in use
	from netip.AddrPort // receive direction: the sending peer's ID
}

// queue is a bounded FIFO of pkts with its own free list. Buffers are
// allocated the first time they are needed and then reused, so memory
// grows to the peak in-flight count (at most limit) and steady-state
// traffic allocates nothing. Since no more than limit pkts ever exist and
// both channels hold limit, sends on them never block. All methods are
// safe for concurrent use.
type queue struct {
	ready chan *pkt
	free  chan *pkt
	made  atomic.Int32 // pkts allocated so far, ≤ limit
	limit int32
	size  int
	done  <-chan struct{}

	// timers holds stopped *time.Timer for waiters; pointers, so Get and
	// Put do not allocate.
	timers sync.Pool
}

func newQueue(limit, size int, done <-chan struct{}) *queue {
	return &queue{
		ready: make(chan *pkt, limit),
		free:  make(chan *pkt, limit),
		limit: int32(limit),
		size:  size,
		done:  done,
	}
}

// waiter is one caller's permission to wait for a free pkt: a caller
// waits at most once per batch (queueWait), then drops at once. Its timer
// comes from the queue's pool, so waiting allocates nothing once warm;
// release returns it.
type waiter struct {
	q     *queue
	timer *time.Timer
	spent bool
}

func (w *waiter) release() {
	if w.timer != nil {
		w.timer.Stop()
		w.q.timers.Put(w.timer)
		w.timer = nil
	}
}

// get returns an empty pkt, or nil when none is free, none may be
// allocated, and none became free while w waited (w nil: do not wait).
func (q *queue) get(w *waiter) *pkt {
	select {
	case p := <-q.free:
		return p
	default:
	}
	if q.made.Add(1) <= q.limit {
		return &pkt{buf: make([]byte, q.size)}
	}
	q.made.Add(-1)
	if w == nil || w.spent {
		return nil
	}
	w.spent = true
	if w.timer == nil {
		if t, ok := q.timers.Get().(*time.Timer); ok {
			t.Reset(queueWait)
			w.timer = t
		} else {
			w.timer = time.NewTimer(queueWait)
		}
	}
	select {
	case p := <-q.free:
		return p
	case <-w.timer.C:
	case <-q.done:
	}
	return nil
}

// put returns p to the free list.
func (q *queue) put(p *pkt) {
	p.n = 0
	p.from = netip.AddrPort{}
	q.free <- p
}

// push appends a filled pkt to the queue.
func (q *queue) push(p *pkt) { q.ready <- p }

// pop waits for the next pkt; it returns nil once done is closed.
func (q *queue) pop() *pkt {
	select {
	case <-q.done:
		return nil
	default:
	}
	select {
	case p := <-q.ready:
		return p
	case <-q.done:
		return nil
	}
}

// tryPop returns the next pkt, or nil if none is queued.
func (q *queue) tryPop() *pkt {
	select {
	case p := <-q.ready:
		return p
	default:
		return nil
	}
}
