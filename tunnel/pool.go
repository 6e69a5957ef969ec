package tunnel

import (
	"sync"

	"github.com/vxwire/vxwire/encap"
)

// Frame buffers come in two sizes, each with room for the VXLAN header in
// front of the frame: small ones for the common MTUs (up to 2026, so a
// 1500-byte underlay's 1450 fits with room to spare) and jumbo ones for
// networks up to the 9000-byte maximum. A port takes its batches from the
// pool that fits its MTU, so a host of 1000 containers on ordinary MTUs
// does not keep 9 KiB per frame slot.
const (
	smallFrameBuf = 2048
	jumboFrameBuf = 9216 + encap.HeaderLen
)

// portBatch is the number of frames one port read returns at most: the
// TAP's own batch size, enough for a 64 KiB TSO frame cut into MTU-sized
// segments.
const portBatch = 64

// batch is one read's worth of frame buffers. bufs[i] is always the whole
// buffer; a port read places frame i at bufs[i][encap.HeaderLen:] so the
// VXLAN header can be written in front of it without copying.
type batch struct {
	bufs  [][]byte
	sizes []int
	// tails are the payloads a split read (tap.SplitReader) lent, frame
	// i's after the headers in bufs[i], when split is true; the buffer
	// has room to append its tail should the frame need to be whole.
	tails [][]byte
	split bool
}

// batchPool hands out batches to port goroutines only while they have
// frames to move, so an idle port holds no buffers. It wraps sync.Pool,
// whose Get and Put of a pointer allocate nothing once warm.
type batchPool struct {
	p sync.Pool
}

// newBatchPool returns a pool of batches of size buffers of bufSize bytes.
func newBatchPool(size, bufSize int) *batchPool {
	bp := &batchPool{}
	bp.p.New = func() any {
		b := &batch{bufs: make([][]byte, size), sizes: make([]int, size), tails: make([][]byte, size)}
		for i := range b.bufs {
			b.bufs[i] = make([]byte, bufSize)
		}
		return b
	}
	return bp
}

func (bp *batchPool) get() *batch { return bp.p.Get().(*batch) }

func (bp *batchPool) put(b *batch) { bp.p.Put(b) }
