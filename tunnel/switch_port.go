package tunnel

// The port → underlay path. One goroutine per port:
//
//	routineReadPort
//	  Wait until the TAP is readable (no buffers held while idle)
//	  take a batch from the pool
//	  Read: frames at bufs[i][8:], TSO super-frames already segmented
//	      (ReadSplit when the sockets gather: a segment's headers there and
//	      its payload lent from the super-frame, joined only by the kernel
//	      in sendmmsg, or copied after the headers if the frame goes
//	      anywhere else)
//	  switchFromPort: load the snapshot once, then per frame
//	      anti-spoofing (switch_guard.go): source MAC, EtherType (IPv4, ARP),
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
	"github.com/vxwire/vxwire/tunnel/tap"
)

// maxPortErrors bounds consecutive read errors on a port before its
// goroutine gives up; a TAP whose namespace is gone fails every read.
const maxPortErrors = 10

func (sw *Switch) routineReadPort(p *port) {
	errs := 0
	pool := sw.poolFor(p.net.mtu)
	sr, split := p.dev.(tap.SplitReader)
	split = split && !p.net.cfg.Encrypted && !p.gateway && sw.gathers()
	for {
		if err := p.dev.Wait(); err != nil {
			if !p.closed.Load() && !errors.Is(err, net.ErrClosed) {
				sw.l.Warn("port stopped", "error", err, "network", p.key.network, "endpoint", p.key.name)
			}
			return
		}
		b := pool.get()
		var n int
		var err error
		if split {
			n, err = sr.ReadSplit(b.bufs, b.sizes, b.tails, encap.HeaderLen)
		} else {
			n, err = p.dev.Read(b.bufs, b.sizes, encap.HeaderLen)
		}
		b.split = split
		if n > 0 {
			sw.switchFromPort(p, b, n)
		}
		if split {
			clear(b.tails[:n]) // hold no view of the device's buffers
		}
		b.split = false
		pool.put(b)
		if err == nil {
			errs = 0
			continue
		}
		if p.closed.Load() || errors.Is(err, net.ErrClosed) {
			return
		}
		if errs++; errs > maxPortErrors {
			sw.l.Warn("port stopped after repeated errors", "error", err, "network", p.key.network, "endpoint", p.key.name)
			return
		}
		time.Sleep(time.Duration(errs) * 10 * time.Millisecond)
	}
}

// switchFromPort forwards the n frames of b read from port p.
func (sw *Switch) switchFromPort(p *port, b *batch, n int) {
	s := &p.sc
	s.reset()
	snap := sw.snap.Load()
	nv := snap.byVNI[p.net.cfg.VNI]
	if nv == nil || nv.net != p.net || p.closed.Load() {
		sw.host.drop(dropNoPort, n)
		return
	}
	hdr := encap.Header{VNI: p.net.cfg.VNI}
	var eth EthHeader
	var last lookupCache
	var drops [numDropReasons]int
	rxBytes, dropped, refilled := 0, 0, false
	var now int64 // unix seconds, read on the first VIP frame of the batch
	// A lent payload may stay apart from its headers only on the way to a
	// peer through a plain socket, with no VIP rewriting it.
	apart := b.split && !nv.encrypted && nv.vips == nil && p.vipt.Load() == nil
	for i := 0; i < n; i++ {
		var tail []byte
		if b.split {
			tail = b.tails[i]
			if tail != nil && !apart {
				tail = b.join(i)
			}
		}
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
		if tail != nil && (eth.Dst.IsMulticast() || eth.Dst == nv.net.gw.mac) {
			tail = b.join(i)
			dgram = b.bufs[i][:encap.HeaderLen+b.sizes[i]]
			frame = dgram[encap.HeaderLen:]
		}
		rxBytes += len(frame) + len(tail)
		if eth.Type == ether.TypeARP && !p.gateway && answerARP(frame, nv.neigh, p.mac) {
			s.addLocal(p, frame)
			continue
		}
		if eth.Type == ether.TypeARP && p.gateway {
			if lp := arpTargetPort(frame, nv.neigh, p.net.fdb, p); lp != nil {
				s.addLocal(lp, frame)
				continue
			}
		}
		if eth.Type == ether.TypeIPv4 && eth.Dst == nv.net.gw.mac && !p.gateway && nv.net.dns != nil {
			if reply := answerDNS(s, nv, b.bufs[i], b.sizes[i]); reply != nil {
				s.addLocal(p, reply)
				continue
			}
		}
		if (nv.vips != nil || p.vipt.Load() != nil) && eth.Type == ether.TypeIPv4 && !p.gateway {
			if now == 0 {
				now = time.Now().Unix()
			}
			// Destination NAT to a VIP's backend (switch_vip.go); the
			// guard above has checked the frame as the container sent it.
			switch r := vipForward(p, nv, frame, now); r {
			case vipNotVIP:
			case vipRewrote:
				eth.Dst = MAC(frame[ether.OffDst : ether.OffDst+6])
			case vipEchoed:
				s.addLocal(p, frame)
				continue
			default:
				drops[r]++
				dropped++
				rxBytes -= len(frame)
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
		if tail != nil && (rp == nil || pathLimit(rp, nv) > 0) {
			// Not to a peer, or to one whose path needs the whole
			// frame checked: make it whole.
			tail = b.join(i)
			dgram = b.bufs[i][:encap.HeaderLen+b.sizes[i]]
			frame = dgram[encap.HeaderLen:]
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
			if lim := pathLimit(rp, nv); lim > 0 {
				if reply := fitPath(frame, eth.Type, nv, lim); reply != nil {
					drops[dropTooBig]++
					dropped++
					rxBytes -= len(frame)
					s.addLocal(p, reply)
					continue
				}
			}
			s.addRemote(rp, int(encap.SourcePort(frame))%len(sw.tx), dgram, tail)
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
			if s.flood == nil {
				// Made on the port's first flood, not at attach: most
				// containers never flood, and a host has thousands.
				s.flood = make([][]byte, 0, len(b.bufs))
			}
			s.flood = append(s.flood, dgram)
		}
	}
	p.stats.rx(n-dropped, rxBytes)
	if dropped > 0 {
		for r, k := range drops {
			p.stats.drop(dropReason(r), k)
			sw.host.drop(dropReason(r), k)
		}
	}
	sw.flush(s, nv, p)
}

// join copies the payload lent for frame i after its headers, in its own
// buffer, which has room for a whole frame, and returns the frame's tail,
// now nil.
func (b *batch) join(i int) []byte {
	end := encap.HeaderLen + b.sizes[i]
	b.sizes[i] += copy(b.bufs[i][end:], b.tails[i])
	b.tails[i] = nil
	return nil
}

// joinAll makes every datagram whole: dgrams[i] followed by tails[i], in
// dgrams[i]'s buffer, which has room for it. tails may be nil.
func joinAll(dgrams, tails [][]byte) {
	for i, t := range tails {
		n := len(dgrams[i])
		dgrams[i] = dgrams[i][:n+len(t)]
		copy(dgrams[i][n:], t)
	}
}

// gathers reports whether every sending socket can send a datagram
// gathered from a head and a tail (encap.GatherWriter), which makes split
// port reads worth it.
func (sw *Switch) gathers() bool {
	for _, c := range sw.tx {
		if _, ok := c.(encap.GatherWriter); !ok {
			return false
		}
	}
	return len(sw.tx) > 0
}
