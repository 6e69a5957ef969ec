package tunnel

// What the switch does with the frames of one batch once it has decided
// where each goes: the per-batch groups (one per local port, one per peer
// and socket, and the flood list) and their flush, one write per group.

import (
	"time"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/resolver"
)

// lookupCache remembers the last FDB answer within one batch.
type lookupCache struct {
	mac   MAC
	valid bool
	lp    *port
	rp    *peer
}

// flush writes out what switching the frames of port from grouped: the
// remote groups, the flood list to every peer (except for the gateway,
// which serves its own host only) and every other local port, and the
// local groups. Frames from the underlay never come here: they are never
// flooded back to peers (split horizon).
func (sw *Switch) flush(s *scratch, nv *netView, from *port) {
	for i := 0; i < s.nRem; i++ {
		g := &s.remote[i]
		tails := g.tails
		if !g.split {
			tails = nil
		}
		sw.send(g.r, sw.conn(nv, g.sock), g.dgrams, tails, g.bytes, nv)
	}
	for i := 0; i < s.nLocal; i++ {
		g := &s.local[i]
		sw.deliver(g.p, g.frames, g.bytes)
	}
	if len(s.flood) > 0 {
		fb := 0
		for _, d := range s.flood {
			fb += len(d) - encap.HeaderLen
		}
		if !from.gateway {
			for _, r := range nv.peers {
				sw.send(r, sw.conn(nv, 0), s.flood, nil, fb, nv)
			}
		}
		// The local copies go straight to each port, after the frames
		// grouped for it above, not through a group per port: with
		// thousands of ports, finding each one's group made a flood
		// quadratic, and the groups stayed in the reader's scratch.
		for i, d := range s.flood {
			s.flood[i] = d[encap.HeaderLen:]
		}
		for _, lp := range nv.ports {
			if lp != from {
				sw.deliver(lp, s.flood, fb)
			}
		}
	}
}

// conn is the socket frames of network nv leave through: the WireGuard
// device for an encrypted network, so that its frames never leave the host
// in the clear, else sending socket sock. It is nil for an encrypted
// network on a host without a key, which must send nothing.
func (sw *Switch) conn(nv *netView, sock int) encap.Conn {
	if nv.encrypted {
		if sw.enc == nil {
			return nil
		}
		return sw.enc
	}
	return sw.tx[sock]
}

// send writes dgrams of network nv to peer r through c and accounts for
// them. If tails is not nil, datagram i is dgrams[i] followed by
// tails[i], sent gathered when c can, else joined first.
func (sw *Switch) send(r *peer, c encap.Conn, dgrams, tails [][]byte, bytes int, nv *netView) {
	if c == nil {
		// An encrypted network on a host without a key: before, this
		// was a nil interface call that took the daemon down.
		r.stats.drop(dropNoKey, len(dgrams))
		sw.host.drop(dropNoKey, len(dgrams))
		return
	}
	var err error
	gw, gathers := c.(encap.GatherWriter)
	switch {
	case tails != nil && gathers && !nv.encrypted && !r.probe.Load():
		err = gw.WriteGather(dgrams, tails, r.addr)
	case nv.encrypted:
		joinAll(dgrams, tails)
		err = c.Write(dgrams, r.addr) // wireguard-go batches on its own
	default:
		joinAll(dgrams, tails)
		err = writeProbing(r, c, dgrams)
	}
	if err != nil {
		r.stats.drop(dropSend, len(dgrams))
		sw.host.drop(dropSend, len(dgrams))
		return
	}
	r.stats.tx(len(dgrams), bytes)
	nv.net.stats.tx(len(dgrams), bytes)
	sw.host.tx(len(dgrams), bytes)
}

// deliver writes frames to a local port and accounts for them.
func (sw *Switch) deliver(p *port, frames [][]byte, bytes int) {
	if p.closed.Load() {
		sw.host.drop(dropNoPort, len(frames))
		return
	}
	if t := p.vipt.Load(); t != nil {
		now := time.Now().Unix()
		for _, f := range frames {
			vipReverse(t, f, now)
		}
	}
	w, err := p.dev.Write(frames)
	if err != nil && w < len(frames) {
		p.stats.drop(dropTapWrite, len(frames)-w)
		sw.host.drop(dropTapWrite, len(frames)-w)
	}
	if w == len(frames) {
		p.stats.tx(w, bytes)
	} else if w > 0 {
		p.stats.tx(w, 0)
	}
}

// portGroup collects frames bound for one local port.
type portGroup struct {
	p      *port
	frames [][]byte
	bytes  int
}

// peerGroup collects datagrams bound for one peer through one socket.
// With split set, tails[i] is the payload that follows dgrams[i] (nil for
// a whole datagram).
type peerGroup struct {
	r      *peer
	sock   int
	dgrams [][]byte
	tails  [][]byte
	split  bool
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
	flood  [][]byte          // datagrams (VXLAN header included) to replicate
	dns    []byte            // DNS replies built by the fast path, allocated on first use
	dnsq   *resolver.Scratch // the fast path's parsed query, with dns
}

func (s *scratch) reset() {
	for i := 0; i < s.nLocal; i++ {
		s.local[i].frames = s.local[i].frames[:0]
		s.local[i].bytes = 0
	}
	for i := 0; i < s.nRem; i++ {
		s.remote[i].dgrams = s.remote[i].dgrams[:0]
		clear(s.remote[i].tails)
		s.remote[i].tails = s.remote[i].tails[:0]
		s.remote[i].split = false
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

// addRemote queues dgram, followed by tail if not nil, for peer r through
// sending socket sock.
func (s *scratch) addRemote(r *peer, sock int, dgram, tail []byte) {
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
	g.tails = append(g.tails, tail)
	g.split = g.split || tail != nil
	g.bytes += len(dgram) - encap.HeaderLen + len(tail)
}
