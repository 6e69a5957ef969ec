package crypto

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
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

	// maxBatch is the most pkts a consumer pops in one call: wireguard-go's
	// batch.
	maxBatch = conn.IdealBatchSize

	// handChunk is how many datagrams a producer fills before it pushes
	// them and wakes the consumer, so that
	// the next stage starts on the head of a long batch while the tail is
	// still being copied.
	handChunk = 16
)

// pkt is one datagram between the caller and WireGuard. buf is owned by
// the queue it belongs to and never changes; a pkt is owned by one
// goroutine at a time, passed along through the queue.
type pkt struct {
	buf  []byte
	n    int            // bytes of buf in use
	from netip.AddrPort // receive direction: the sending peer's ID
}

// queue is a bounded FIFO of pkts with its own free list, moved a batch at
// a time: a producer takes a batch of empty pkts and pushes the filled
// ones under one lock each, a consumer pops what is queued and releases
// it under one lock each, and a consumer is woken once per push, not per
// pkt. (A channel of pkts cost four channel operations per datagram, and
// their locks were the data path's largest cost after the AEAD.)
//
// Buffers are allocated the first time they are needed and then reused,
// so memory grows to the peak in-flight count (at most limit) and
// steady-state traffic allocates nothing. No more than limit pkts ever
// exist, so the FIFO never overflows. All methods are safe for concurrent
// use.
type queue struct {
	mu    sync.Mutex
	fifo  []*pkt // ring of filled pkts: count of them from head
	head  int
	count int
	free  []*pkt // empty pkts (a stack: the warmest buffer first)
	made  int    // pkts allocated so far, ≤ limit
	limit int
	size  int

	// wake holds a token when a push may have found the consumer
	// waiting; space one when a release may have found a producer
	// waiting (waiting > 0).
	wake    chan struct{}
	space   chan struct{}
	waiting atomic.Int32
	done    <-chan struct{}

	// timers holds stopped *time.Timer for waiters; pointers, so Get and
	// Put do not allocate.
	timers sync.Pool
}

func newQueue(limit, size int, done <-chan struct{}) *queue {
	return &queue{
		fifo:  make([]*pkt, limit),
		free:  make([]*pkt, 0, limit),
		limit: limit,
		size:  size,
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		done:  done,
	}
}

// waiter is one caller's permission to wait for free pkts: a caller waits
// at most once per batch (queueWait), then drops at once. Its timer comes
// from the queue's pool, so waiting allocates nothing once warm; release
// returns it.
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

// take fills dst with empty pkts and returns how many it took: all that
// are free or may still be allocated, up to len(dst). When there are
// none it waits, once per w, up to queueWait for some to be released; it
// returns 0 when none came (or at once when w is nil or spent).
func (q *queue) take(dst []*pkt, w *waiter) int {
	if n := q.tryTake(dst); n > 0 || w == nil || w.spent {
		return n
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
	q.waiting.Add(1)
	defer q.waiting.Add(-1)
	for {
		// Again after counting as waiting: a release in between did not
		// signal.
		if n := q.tryTake(dst); n > 0 {
			if q.waiting.Load() > 1 {
				q.signal(q.space) // others may fit in what is left
			}
			return n
		}
		select {
		case <-q.space:
		case <-w.timer.C:
			return 0
		case <-q.done:
			return 0
		}
	}
}

// tryTake is take without waiting.
func (q *queue) tryTake(dst []*pkt) int {
	n := 0
	q.mu.Lock()
	for n < len(dst) && len(q.free) > 0 {
		last := len(q.free) - 1
		dst[n] = q.free[last]
		q.free[last] = nil
		q.free = q.free[:last]
		n++
	}
	for n < len(dst) && q.made < q.limit {
		q.made++
		dst[n] = &pkt{buf: make([]byte, q.size)}
		n++
	}
	q.mu.Unlock()
	return n
}

// push appends the filled pkts ps, taken from q, to the FIFO and wakes
// the consumer.
func (q *queue) push(ps []*pkt) {
	if len(ps) == 0 {
		return
	}
	q.mu.Lock()
	for _, p := range ps {
		q.fifo[(q.head+q.count)%q.limit] = p
		q.count++
	}
	q.mu.Unlock()
	q.signal(q.wake)
}

// release returns the pkts ps to the free list.
func (q *queue) release(ps []*pkt) {
	if len(ps) == 0 {
		return
	}
	q.mu.Lock()
	for _, p := range ps {
		p.n = 0
		p.from = netip.AddrPort{}
		q.free = append(q.free, p)
	}
	q.mu.Unlock()
	if q.waiting.Load() > 0 {
		q.signal(q.space)
	}
}

// signal leaves a token in c (capacity 1) unless one is there already.
func (q *queue) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pop waits for queued pkts and moves up to len(dst) of them, oldest
// first, into dst; it returns 0 once stop is closed. Only one goroutine at
// a time may pop.
func (q *queue) pop(dst []*pkt, stop <-chan struct{}) int {
	for {
		if n := q.tryPop(dst); n > 0 {
			return n
		}
		select {
		case <-q.wake:
		case <-stop:
			return 0
		}
	}
}

// tryPop moves up to len(dst) queued pkts into dst without waiting.
func (q *queue) tryPop(dst []*pkt) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(len(dst), q.count)
	for i := 0; i < n; i++ {
		dst[i] = q.fifo[q.head]
		q.fifo[q.head] = nil
		q.head = (q.head + 1) % q.limit
	}
	q.count -= n
	return n
}

// filler hands a producer empty pkts of q, taken handChunk at a time, and
// pushes the filled ones a chunk at a time: one lock each way and one
// wake-up of the consumer per chunk. Its waiter allows one wait per
// filler; done must be called when the producer is finished.
type filler struct {
	w      waiter
	local  [handChunk]*pkt // taken from q: local[:k] filled, local[k:got] not yet
	got, k int
}

func newFiller(q *queue) filler { return filler{w: waiter{q: q}} }

// next returns an empty pkt to fill, which is pushed with the next chunk.
// When it must take a chunk it takes at most left pkts (the datagrams
// still to come, this one included); it returns nil when none is free
// after the filler's one wait.
func (f *filler) next(left int) *pkt {
	if f.k == f.got {
		q := f.w.q
		q.push(f.local[:f.k])
		f.k = 0
		if f.got = q.take(f.local[:min(left, handChunk)], &f.w); f.got == 0 {
			return nil
		}
	}
	f.k++
	return f.local[f.k-1]
}

// done pushes the filled pkts, returns the unfilled ones to the free list
// and the waiter's timer to its pool.
func (f *filler) done() {
	q := f.w.q
	q.push(f.local[:f.k])
	q.release(f.local[f.k:f.got])
	f.k, f.got = 0, 0
	f.w.release()
}
