// Package taptest provides an in-memory tap.Device for tests of code that
// drives container ports, such as the switch, without root or a TAP.
package taptest

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/vxwire/vxwire/tunnel/tap"
)

// ChannelDevice is a tap.Device over channels. Frames a test injects with
// Inject are what the container "sent": Wait and Read return them. Frames
// written with Write are what the container "received": the test takes
// them from Written. Every frame is copied on the way in and out, so
// neither side keeps a reference to the other's buffers.
//
// Wait and Read must be called from one goroutine, as tap.Device requires;
// Inject, Written, Write, Drops, Stats and Close are safe for concurrent
// use.
type ChannelDevice struct {
	in     chan []byte
	out    chan []byte
	closed chan struct{}
	once   sync.Once
	mtu    int
	batch  int
	drops  atomic.Uint64 // frames Read dropped: larger than the caller's buffer

	// Counters in tap.Stats' form; see Stats.
	rxReads, rxFrames, txWrites, txFrames atomic.Uint64

	pending []byte // frame taken by Wait, not yet returned by Read
}

var _ tap.Device = (*ChannelDevice)(nil)

// NewChannelDevice returns a device with the given MTU and batch size
// whose channels buffer up to depth frames in each direction.
func NewChannelDevice(mtu, batch, depth int) *ChannelDevice {
	return &ChannelDevice{
		in:     make(chan []byte, depth),
		out:    make(chan []byte, depth),
		closed: make(chan struct{}),
		mtu:    mtu,
		batch:  batch,
	}
}

// Inject queues a copy of frame as if the container had sent it. It blocks
// while the queue is full and returns net.ErrClosed once the device is
// closed.
func (c *ChannelDevice) Inject(frame []byte) error {
	cp := append([]byte(nil), frame...)
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	select {
	case c.in <- cp:
		return nil
	case <-c.closed:
		return net.ErrClosed
	}
}

// Written returns the channel of frames written to the container. Each
// frame is a copy the receiver owns. The channel is never closed; select
// on it with a timeout.
func (c *ChannelDevice) Written() <-chan []byte { return c.out }

// Wait blocks until an injected frame is available or the device is
// closed (net.ErrClosed).
func (c *ChannelDevice) Wait() error {
	if c.pending != nil {
		return nil
	}
	select {
	case <-c.closed:
		return net.ErrClosed
	default:
	}
	select {
	case f := <-c.in:
		c.pending = f
		return nil
	case <-c.closed:
		return net.ErrClosed
	}
}

// Read copies queued frames into bufs[i][offset:] without blocking and
// returns how many. A frame longer than its buffer is dropped and counted.
func (c *ChannelDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-c.closed:
		c.pending = nil
		return 0, net.ErrClosed
	default:
	}
	n := 0
	for n < len(bufs) {
		f := c.pending
		c.pending = nil
		if f == nil {
			select {
			case f = <-c.in:
			default:
				c.countRead(n)
				return n, nil
			}
		}
		if len(bufs[n])-offset < len(f) {
			c.drops.Add(1)
			continue
		}
		sizes[n] = copy(bufs[n][offset:], f)
		n++
	}
	c.countRead(n)
	return n, nil
}

func (c *ChannelDevice) countRead(n int) {
	if n > 0 {
		c.rxReads.Add(1)
		c.rxFrames.Add(uint64(n))
	}
}

// Write copies every frame to the Written channel, blocking while it is
// full. It returns net.ErrClosed, with the number of frames delivered,
// once the device is closed.
func (c *ChannelDevice) Write(frames [][]byte) (int, error) {
	for i, f := range frames {
		cp := append([]byte(nil), f...)
		select {
		case c.out <- cp:
		case <-c.closed:
			c.countWrite(i)
			return i, net.ErrClosed
		}
	}
	c.countWrite(len(frames))
	return len(frames), nil
}

func (c *ChannelDevice) countWrite(n int) {
	if n > 0 {
		c.txWrites.Add(1)
		c.txFrames.Add(uint64(n))
	}
}

// Stats reports the device's counters as a native TAP does: Read calls
// that returned frames and the frames they returned, frames Read dropped
// (RxDropped, the same as Drops), and Write calls that delivered frames
// and the frames they delivered. The fake neither segments nor
// coalesces, so those counters stay 0. It is safe for concurrent use.
func (c *ChannelDevice) Stats() tap.Stats {
	return tap.Stats{
		RxReads:   c.rxReads.Load(),
		RxFrames:  c.rxFrames.Load(),
		RxDropped: c.drops.Load(),
		TxWrites:  c.txWrites.Load(),
		TxFrames:  c.txFrames.Load(),
	}
}

// BatchSize returns the batch size given to NewChannelDevice.
func (c *ChannelDevice) BatchSize() int { return c.batch }

// MTU returns the MTU given to NewChannelDevice.
func (c *ChannelDevice) MTU() int { return c.mtu }

// Drops returns how many injected frames Read dropped as too long.
func (c *ChannelDevice) Drops() uint64 { return c.drops.Load() }

// Close unblocks Wait, Read, Inject and Write with net.ErrClosed. It is
// safe to call more than once.
func (c *ChannelDevice) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
