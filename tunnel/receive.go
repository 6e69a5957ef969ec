package tunnel

// The underlay → port path. One goroutine reads the VXLAN socket:
//
//	routineReadUnderlay
//	  Read a batch (recvmmsg; UDP GRO super-datagrams split in order)
//	  switchFromUnderlay: load the snapshot once, then per datagram
//	      source address must be a configured peer     else drop unknown_peer
//	      VXLAN header: length, I flag                 else drop short/bad_flags
//	      VNI must be a configured network             else drop unknown_vni
//	      learn source MAC → peer in that network's FDB
//	      group/multicast or unknown destination → every local port of the network
//	      FDB hit on a local port → that port's group
//	  flush: one Device.Write per local port (runs of TCP coalesced into GSO)
//	Frames from the underlay are never sent back to the underlay.

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/vxwire/vxwire/encap"
)

func (e *Engine) routineReadUnderlay() {
	defer e.wg.Done()
	size := e.rx.BatchSize()
	bufs := make([][]byte, size)
	for i := range bufs {
		bufs[i] = make([]byte, encap.MaxDatagram)
	}
	sizes := make([]int, size)
	eps := make([]netip.AddrPort, size)
	var s scratch
	s.init(size)
	errs := 0
	for {
		n, err := e.rx.Read(bufs, sizes, eps)
		if n > 0 {
			e.switchFromUnderlay(&s, bufs, sizes, eps, n)
		}
		if err == nil {
			errs = 0
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		// Transient receive errors (ICMP-induced ECONNREFUSED and the like)
		// get a bounded back-off; the socket stays in use.
		if errs++; errs%100 == 1 {
			e.l.Warn("underlay read failed", "error", err)
		}
		time.Sleep(time.Duration(min(errs, 100)) * time.Millisecond)
	}
}

// switchFromUnderlay forwards the n datagrams received from the underlay.
func (e *Engine) switchFromUnderlay(s *scratch, bufs [][]byte, sizes []int, eps []netip.AddrPort, n int) {
	s.reset()
	snap := e.snap.Load()
	now := time.Now().UnixNano()
	var hdr encap.Header
	var eth EthHeader
	rxFrames, rxBytes := 0, 0
	for i := 0; i < n; i++ {
		d := bufs[i][:sizes[i]]
		r := snap.byAddr[eps[i].Addr().Unmap()]
		if r == nil {
			e.host.drop(dropUnknownPeer, 1)
			continue
		}
		if err := hdr.Decode(d); err != nil {
			if errors.Is(err, encap.ErrNoIFlag) {
				r.stats.drop(dropBadFlags, 1)
				e.host.drop(dropBadFlags, 1)
			} else {
				r.stats.drop(dropShort, 1)
				e.host.drop(dropShort, 1)
			}
			continue
		}
		frame := d[encap.HeaderLen:]
		if eth.Decode(frame) != nil {
			r.stats.drop(dropShort, 1)
			e.host.drop(dropShort, 1)
			continue
		}
		nv := snap.byVNI[hdr.VNI]
		if nv == nil {
			r.stats.drop(dropUnknownVNI, 1)
			e.host.drop(dropUnknownVNI, 1)
			continue
		}
		if eth.Src.IsMulticast() || eth.Src.IsZero() {
			r.stats.drop(dropMalformed, 1)
			e.host.drop(dropMalformed, 1)
			continue
		}
		r.stats.rx(1, len(frame))
		nv.net.stats.rx(1, len(frame))
		rxFrames++
		rxBytes += len(frame)
		nv.net.fdb.learn(eth.Src, nil, r, now)
		if !eth.Dst.IsMulticast() {
			if lp, rp := nv.net.fdb.lookup(eth.Dst); lp != nil {
				s.addLocal(lp, frame)
				continue
			} else if rp != nil {
				// Known to live behind another peer: not ours to deliver.
				nv.net.stats.drop(dropNoPort, 1)
				continue
			}
		}
		for _, lp := range nv.ports {
			s.addLocal(lp, frame)
		}
	}
	e.host.rx(rxFrames, rxBytes)
	for i := 0; i < s.nLocal; i++ {
		g := &s.local[i]
		e.deliver(g.p, g.frames, g.bytes)
	}
}
