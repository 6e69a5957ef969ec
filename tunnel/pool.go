package tunnel

import (
	"sync"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
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

// poolFor returns the pool whose buffers hold frames of a port with mtu.
func (e *Engine) poolFor(mtu int) *batchPool {
	if encap.HeaderLen+ether.HeaderLen+mtu <= smallFrameBuf {
		return e.poolSmall
	}
	return e.poolJumbo
}

// batch is one read's worth of frame buffers. bufs[i] is always the whole
// buffer; a port read places frame i at bufs[i][encap.HeaderLen:] so the
// VXLAN header can be written in front of it without copying.
type batch struct {
	bufs  [][]byte
	sizes []int
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
		b := &batch{bufs: make([][]byte, size), sizes: make([]int, size)}
		for i := range b.bufs {
			b.bufs[i] = make([]byte, bufSize)
		}
		return b
	}
	return bp
}

func (bp *batchPool) get() *batch { return bp.p.Get().(*batch) }

func (bp *batchPool) put(b *batch) { bp.p.Put(b) }

// portGroup collects frames bound for one local port.
type portGroup struct {
	p      *port
	frames [][]byte
	bytes  int
}

// peerGroup collects datagrams bound for one peer through one socket.
type peerGroup struct {
	r      *peer
	sock   int
	dgrams [][]byte
	bytes  int
}

// scratch is a goroutine's reusable grouping state (like wireguard-go's
// per-goroutine elemsByPeer): the groups keep their slices' capacity from
// batch to batch, so steady-state switching allocates nothing.
type scratch struct {
	local  []portGroup
	nLocal int
	remote []peerGroup
	nRem   int
	flood  [][]byte // datagrams (VXLAN header included) to replicate
	dns    []byte   // DNS replies built by the fast path, allocated on first use
}

func (s *scratch) init(batchSize int) {
	s.flood = make([][]byte, 0, batchSize)
}

func (s *scratch) reset() {
	for i := 0; i < s.nLocal; i++ {
		s.local[i].frames = s.local[i].frames[:0]
		s.local[i].bytes = 0
	}
	for i := 0; i < s.nRem; i++ {
		s.remote[i].dgrams = s.remote[i].dgrams[:0]
		s.remote[i].bytes = 0
	}
	s.nLocal, s.nRem = 0, 0
	s.flood = s.flood[:0]
}

// addLocal queues frame for port p. Consecutive frames usually go to the
// same place, so the last group is tried first.
func (s *scratch) addLocal(p *port, frame []byte) {
	g := s.localGroup(p)
	g.frames = append(g.frames, frame)
	g.bytes += len(frame)
}

func (s *scratch) localGroup(p *port) *portGroup {
	if s.nLocal > 0 && s.local[s.nLocal-1].p == p {
		return &s.local[s.nLocal-1]
	}
	for i := 0; i < s.nLocal; i++ {
		if s.local[i].p == p {
			return &s.local[i]
		}
	}
	if s.nLocal == len(s.local) {
		s.local = append(s.local, portGroup{})
	}
	g := &s.local[s.nLocal]
	s.nLocal++
	g.p = p
	return g
}

// addRemote queues dgram for peer r through sending socket sock.
func (s *scratch) addRemote(r *peer, sock int, dgram []byte) {
	var g *peerGroup
	if s.nRem > 0 && s.remote[s.nRem-1].r == r && s.remote[s.nRem-1].sock == sock {
		g = &s.remote[s.nRem-1]
	} else {
		for i := 0; i < s.nRem; i++ {
			if s.remote[i].r == r && s.remote[i].sock == sock {
				g = &s.remote[i]
				break
			}
		}
	}
	if g == nil {
		if s.nRem == len(s.remote) {
			s.remote = append(s.remote, peerGroup{})
		}
		g = &s.remote[s.nRem]
		s.nRem++
		g.r, g.sock = r, sock
	}
	g.dgrams = append(g.dgrams, dgram)
	g.bytes += len(dgram) - encap.HeaderLen
}
