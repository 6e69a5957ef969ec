package tunnel

// The port → underlay path. One goroutine per port:
//
//	routineReadPort
//	  Wait until the TAP is readable (no buffers held while idle)
//	  take a batch from the pool
//	  Read: frames at bufs[i][8:], TSO super-frames already segmented
//	  switchFromPort: load the snapshot once, then per frame
//	      anti-spoofing (guard.go): source MAC, EtherType (IPv4, ARP),
//	      IPv4 source and ARP sender must be the port's own
//	      write the VXLAN header into the 8 bytes of headroom
//	      group/multicast or unknown destination → flood list, within
//	      the port's flood rate
//	      FDB hit on a local port → that port's group
//	      FDB hit on a peer → that (peer, socket) group
//	  flush: one Conn.Write per (peer, socket) group (sendmmsg + UDP GSO),
//	         the flood list to every peer and every other local port,
//	         one Device.Write per local port group (coalesced to GSO)
//	  return the batch to the pool

import (
	"errors"
	"net"
	"time"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ether"
)

// maxPortErrors bounds consecutive read errors on a port before its
// goroutine gives up; a TAP whose namespace is gone fails every read.
const maxPortErrors = 10

func (e *Engine) routineReadPort(p *port) {
	errs := 0
	pool := e.poolFor(p.net.mtu)
	for {
		if err := p.dev.Wait(); err != nil {
			if !p.closed.Load() && !errors.Is(err, net.ErrClosed) {
				e.l.Warn("port stopped", "error", err, "network", p.key.network, "endpoint", p.key.name)
			}
			return
		}
		b := pool.get()
		n, err := p.dev.Read(b.bufs, b.sizes, encap.HeaderLen)
		if n > 0 {
			e.switchFromPort(p, b, n)
		}
		pool.put(b)
		if err == nil {
			errs = 0
			continue
		}
		if p.closed.Load() || errors.Is(err, net.ErrClosed) {
			return
		}
		if errs++; errs > maxPortErrors {
			e.l.Warn("port stopped after repeated errors", "error", err, "network", p.key.network, "endpoint", p.key.name)
			return
		}
		time.Sleep(time.Duration(errs) * 10 * time.Millisecond)
	}
}

// switchFromPort forwards the n frames of b read from port p.
func (e *Engine) switchFromPort(p *port, b *batch, n int) {
	s := &p.sc
	s.reset()
	snap := e.snap.Load()
	nv := snap.byVNI[p.net.cfg.VNI]
	if nv == nil || nv.net != p.net || p.closed.Load() {
		e.host.drop(dropNoPort, n)
		return
	}
	hdr := encap.Header{VNI: p.net.cfg.VNI}
	var eth EthHeader
	var last lookupCache
	var drops [numDropReasons]int
	rxBytes, dropped, refilled := 0, 0, false
	for i := 0; i < n; i++ {
		dgram := b.bufs[i][:encap.HeaderLen+b.sizes[i]]
		frame := dgram[encap.HeaderLen:]
		if eth.Decode(frame) != nil {
			drops[dropMalformed]++
			dropped++
			continue
		}
		if eth.Src != p.mac {
			drops[dropSpoofed]++
			dropped++
			continue
		}
		if !p.gateway && !p.ownIPv4(frame, eth.Type) {
			if r := p.admit(frame, eth.Type); r != dropNone {
				drops[r]++
				dropped++
				continue
			}
		}
		rxBytes += len(frame)
		if eth.Type == ether.TypeARP && !p.gateway && answerARP(frame, nv.neigh, p.mac) {
			s.addLocal(p, frame)
			continue
		}
		if eth.Type == ether.TypeIPv4 && eth.Dst == nv.net.gw.mac && !p.gateway && nv.net.dns != nil {
			if reply := answerDNS(s, nv, b.bufs[i], b.sizes[i]); reply != nil {
				s.addLocal(p, reply)
				continue
			}
		}
		hdr.Encode(dgram)
		var lp *port
		var rp *peer
		if !eth.Dst.IsMulticast() {
			// Frames of a batch mostly share their destination: look the
			// FDB up once per run of equal destinations, not per frame.
			if eth.Dst != last.mac || !last.valid {
				last.lp, last.rp = p.net.fdb.lookup(eth.Dst)
				last.mac, last.valid = eth.Dst, true
			}
			lp, rp = last.lp, last.rp
		}
		switch {
		case lp == p:
			// Addressed to itself: nothing to do.
		case lp != nil:
			s.addLocal(lp, frame)
		case rp != nil && p.gateway:
			// The gateway serves its own host's containers only.
			p.stats.drop(dropNoPort, 1)
		case rp != nil:
			s.addRemote(rp, int(encap.SourcePort(frame))%len(e.tx), dgram)
		default:
			// Broadcast, multicast or unknown unicast: flooded, within
			// the port's flood rate (the clock is read once per batch).
			if !refilled {
				p.flood.refill(time.Now().UnixNano())
				refilled = true
			}
			if !p.flood.take() {
				drops[dropFloodLimit]++
				dropped++
				rxBytes -= len(frame)
				continue
			}
			s.flood = append(s.flood, dgram)
		}
	}
	p.stats.rx(n-dropped, rxBytes)
	if dropped > 0 {
		for r, k := range drops {
			p.stats.drop(dropReason(r), k)
			e.host.drop(dropReason(r), k)
		}
	}
	e.flush(s, nv, p)
}

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
func (e *Engine) flush(s *scratch, nv *netView, from *port) {
	for i := 0; i < s.nRem; i++ {
		g := &s.remote[i]
		e.send(g.r, e.conn(nv, g.sock), g.dgrams, g.bytes, nv.net)
	}
	if len(s.flood) > 0 {
		if !from.gateway {
			fb := 0
			for _, d := range s.flood {
				fb += len(d) - encap.HeaderLen
			}
			for _, r := range nv.peers {
				e.send(r, e.conn(nv, 0), s.flood, fb, nv.net)
			}
		}
		for _, lp := range nv.ports {
			if lp != from {
				for _, d := range s.flood {
					s.addLocal(lp, d[encap.HeaderLen:])
				}
			}
		}
	}
	for i := 0; i < s.nLocal; i++ {
		g := &s.local[i]
		e.deliver(g.p, g.frames, g.bytes)
	}
}

// conn is the socket frames of network nv leave through: the WireGuard
// device for an encrypted network, so that its frames never leave the host
// in the clear, else sending socket sock. It is nil for an encrypted
// network on a host without a key, which must send nothing.
func (e *Engine) conn(nv *netView, sock int) encap.Conn {
	if nv.encrypted {
		if e.enc == nil {
			return nil
		}
		return e.enc
	}
	return e.tx[sock]
}

// send writes dgrams to peer r through c and accounts for them.
func (e *Engine) send(r *peer, c encap.Conn, dgrams [][]byte, bytes int, n *network) {
	if c == nil {
		// An encrypted network on a host without a key: before, this
		// was a nil interface call that took the daemon down.
		r.stats.drop(dropNoKey, len(dgrams))
		e.host.drop(dropNoKey, len(dgrams))
		return
	}
	if err := c.Write(dgrams, r.addr); err != nil {
		r.stats.drop(dropSend, len(dgrams))
		e.host.drop(dropSend, len(dgrams))
		return
	}
	r.stats.tx(len(dgrams), bytes)
	n.stats.tx(len(dgrams), bytes)
	e.host.tx(len(dgrams), bytes)
}

// deliver writes frames to a local port and accounts for them.
func (e *Engine) deliver(p *port, frames [][]byte, bytes int) {
	if p.closed.Load() {
		e.host.drop(dropNoPort, len(frames))
		return
	}
	w, err := p.dev.Write(frames)
	if err != nil && w < len(frames) {
		p.stats.drop(dropTapWrite, len(frames)-w)
		e.host.drop(dropTapWrite, len(frames)-w)
	}
	if w == len(frames) {
		p.stats.tx(w, bytes)
	} else if w > 0 {
		p.stats.tx(w, 0)
	}
}
