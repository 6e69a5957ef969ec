package crypto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap"
)

// TestIntegrityUnderConcurrency drives the encrypted path the way the
// interleavings that could corrupt a datagram would need: several writers
// per direction with batches of every length, datagrams of a different
// size each (so an entry given another's size or offset shows), a reader
// that asks for 1 to BatchSize+3 datagrams per Read, under GOMAXPROCS 1, 2
// and 8. Every datagram must arrive byte for byte as sent, from the right
// peer, at most once, and the reader's buffers must not change between
// its Reads (a buffer still written by the device after Read returned).
func TestIntegrityUnderConcurrency(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	for _, procs := range []int{1, 2, 8} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			integrityRun(t)
		})
	}
}

// integritySize is the size of datagram seq in TestIntegrityUnderConcurrency:
// every size from the smallest that holds seq to the inner MTU.
func integritySize(seq uint32) int {
	const smallest = encap.HeaderLen + 4
	return smallest + int(seq*7919%uint32(DefaultMTU-InnerOverhead-smallest+1))
}

// checker is the reader side of integrityRun: it reads a device in its own
// goroutine and records what arrived and the first fault.
type checker struct {
	d    *Device
	from netip.AddrPort
	room chan struct{} // one token per datagram in flight
	sent atomic.Int64  // datagrams given to Write for this reader

	mu   sync.Mutex
	seen map[uint32]bool
	err  error
	done chan struct{}
}

func newChecker(d *Device, from netip.AddrPort) *checker {
	c := &checker{d: d, from: from, room: make(chan struct{}, 128), seen: make(map[uint32]bool), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checker) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *checker) run() {
	defer close(c.done)
	const poison = 0xa5
	max := c.d.BatchSize() + 3
	bufs := make([][]byte, max)
	for i := range bufs {
		bufs[i] = make([]byte, encap.MaxDatagram)
		for j := range bufs[i] {
			bufs[i][j] = poison
		}
	}
	sizes, eps := make([]int, max), make([]netip.AddrPort, max)
	for round := 0; ; round++ {
		want := 1 + round%max
		for i := 0; i < want; i++ {
			// Read copies at most the inner MTU into a buffer.
			for j, v := range bufs[i][:DefaultMTU] {
				if v != poison {
					c.fail(fmt.Errorf("read buffer %d byte %d changed to %#x between Reads", i, j, v))
					break
				}
			}
		}
		n, err := c.d.Read(bufs[:want], sizes, eps)
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil {
			c.fail(err)
			return
		}
		for i := 0; i < n; i++ {
			c.check(bufs[i][:sizes[i]], eps[i])
			for j := range bufs[i][:sizes[i]] {
				bufs[i][j] = poison
			}
		}
	}
}

func (c *checker) check(data []byte, from netip.AddrPort) {
	if from != c.from {
		c.fail(fmt.Errorf("datagram from %v, want %v", from, c.from))
		return
	}
	if isProbe(data) {
		return
	}
	if len(data) < encap.HeaderLen+4 {
		c.fail(fmt.Errorf("datagram of %d bytes", len(data)))
		return
	}
	seq := binary.BigEndian.Uint32(data[encap.HeaderLen:])
	if string(data) != string(vxlanDatagram(integritySize(seq), seq)) {
		c.fail(fmt.Errorf("datagram %d corrupted (%d bytes, want %d)", seq, len(data), integritySize(seq)))
		return
	}
	c.mu.Lock()
	dup := c.seen[seq]
	c.seen[seq] = true
	c.mu.Unlock()
	if dup {
		c.fail(fmt.Errorf("datagram %d delivered twice", seq))
	}
	select {
	case <-c.room:
	default:
	}
}

// state returns how many distinct datagrams arrived and the first fault.
func (c *checker) state() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen), c.err
}

func integrityRun(t *testing.T) {
	const writers, perWriter = 4, 750
	a, b := newNode(t, 1), newNode(t, 2)
	for _, n := range []*node{a, b} {
		d, err := New(Config{PrivateKey: n.key, TunnelAddr: n.tunnel, ListenAddr: netip.MustParseAddr("127.0.0.1")}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		n.dev = d
	}
	connect(t, a, b)
	atB, atA := newChecker(b.dev, a.id), newChecker(a.dev, b.id)
	defer func() {
		a.dev.Close()
		b.dev.Close()
		<-atA.done
		<-atB.done
	}()
	// Bring the session up one direction at a time, as establish does.
	for _, dir := range []struct {
		from *node
		to   netip.AddrPort
		at   *checker
	}{{a, b.id, atB}, {b, a.id, atA}} {
		eventually(t, 15*time.Second, "a session", func() bool {
			sendBatch(t, dir.from, dir.to, probeSeq, 1, probeSize)
			return dir.at.d.Stats().RxPackets > 0
		})
	}

	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	send := func(from *node, to netip.AddrPort, at *checker, w int) {
		defer wg.Done()
		batch := make([][]byte, 0, from.dev.BatchSize())
		seq := w * perWriter
		for k := 1; seq < (w+1)*perWriter && time.Now().Before(deadline); k = k%from.dev.BatchSize() + 1 {
			batch = batch[:0]
			for ; len(batch) < k && seq < (w+1)*perWriter; seq++ {
				select {
				case at.room <- struct{}{}:
				case <-time.After(200 * time.Millisecond):
					// Datagrams were lost and hold the window:
					// open it again.
					for len(at.room) > 0 {
						select {
						case <-at.room:
						default:
						}
					}
				}
				batch = append(batch, vxlanDatagram(integritySize(uint32(seq)), uint32(seq)))
			}
			if err := from.dev.Write(batch, to); err != nil && !errors.Is(err, ErrQueueFull) {
				t.Errorf("write: %v", err)
				return
			}
			at.sent.Add(int64(len(batch)))
		}
	}
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go send(a, b.id, atB, w)
		go send(b, a.id, atA, w)
	}
	wg.Wait()
	sentB, sentA := int(atB.sent.Load()), int(atA.sent.Load())
	var nb, na int
	var errB, errA error
	for until := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		nb, errB = atB.state()
		na, errA = atA.state()
		if nb == sentB && na == sentA || errA != nil || errB != nil || time.Now().After(until) {
			break
		}
	}
	if errB != nil {
		t.Fatalf("a→b: %v", errB)
	}
	if errA != nil {
		t.Fatalf("b→a: %v", errA)
	}
	t.Logf("a→b %d/%d, b→a %d/%d of %d each", nb, sentB, na, sentA, writers*perWriter)
	// Loss is allowed (a full queue or socket drops), but most must pass
	// for the checks above to mean something. A slow machine may send
	// fewer than planned before the deadline.
	if sentB < 100 || sentA < 100 || nb < sentB*9/10 || na < sentA*9/10 {
		t.Fatalf("a→b %d/%d, b→a %d/%d arrived", nb, sentB, na, sentA)
	}
}
