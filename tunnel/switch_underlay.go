package tunnel

// The underlay → port path. One goroutine reads the VXLAN socket:
//
//	routineReadUnderlay
//	  Read a batch (recvmmsg; UDP GRO super-datagrams lent as views, in order)
//	  switchFromUnderlay: load the snapshot once, then per datagram
//	      source address must be a configured peer     else drop unknown_peer
//	      VXLAN header: length, I flag                 else drop short/bad_flags
//	      VNI must be a configured network             else drop unknown_vni
//	      plain VXLAN from a silent peer with a key: PeerAlive (heardFrom)
//	      learn source MAC → peer in that network's FDB (bounded)
//	      source MAC a local port owns or a record places behind another
//	      peer                                         else drop spoofed
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

// routineReadUnderlay reads c, the plain VXLAN socket or (encrypted true)
// the WireGuard device.
func (sw *Switch) routineReadUnderlay(c encap.Conn, encrypted bool) {
	size := c.BatchSize()
	bufs := make([][]byte, size)
	for i := range bufs {
		bufs[i] = make([]byte, encap.MaxDatagram)
	}
	sizes := make([]int, size)
	eps := make([]netip.AddrPort, size)
	// A conn that lends views of its receive buffers (the plain socket)
	// saves a copy of every byte: the datagrams of a GRO message stay
	// where the kernel put them. The views are valid until the next read,
	// and switchFromUnderlay has written them out by then.
	vr, lend := c.(encap.ViewReader)
	frames := bufs
	if lend {
		frames = make([][]byte, size)
	}
	var s scratch
	errs := 0
	for {
		var n int
		var err error
		if lend {
			n, err = vr.ReadViews(bufs, frames, eps)
			for i := range n {
				sizes[i] = len(frames[i])
			}
		} else {
			n, err = c.Read(bufs, sizes, eps)
		}
		if n > 0 {
			sw.switchFromUnderlay(&s, frames, sizes, eps, n, encrypted)
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
			sw.l.Warn("underlay read failed", "error", err)
		}
		time.Sleep(time.Duration(min(errs, 100)) * time.Millisecond)
	}
}

// switchFromUnderlay forwards the n datagrams received from the underlay.
// Counters are summed per run of datagrams from one peer on one network and
// added once per run, and the FDB is consulted once per run of equal source
// and destination MACs, so a batch of one TCP flow costs a handful of
// atomic operations rather than several per frame.
// encrypted says the datagrams came out of WireGuard; plaintext VXLAN for
// an encrypted network is dropped (the CVE-2023-28840 class of bugs).
func (sw *Switch) switchFromUnderlay(s *scratch, bufs [][]byte, sizes []int, eps []netip.AddrPort, n int, encrypted bool) {
	s.reset()
	snap := sw.snap.Load()
	now := time.Now().UnixNano()
	var hdr encap.Header
	var eth EthHeader
	var run rxRun
	var last lookupCache
	var learned MAC
	var learnedFrom *peer
	var learnedRes learnResult
	// Datagrams of a batch mostly come from one peer for one network, so
	// both map lookups are made once per run, like the FDB's.
	var lastEP netip.AddrPort
	var r *peer
	var nv *netView
	lastVNI := uint32(encap.MaxVNI + 1) // no VNI is this large
	hostFrames, hostBytes := 0, 0
	for i := 0; i < n; i++ {
		d := bufs[i][:sizes[i]]
		if eps[i] != lastEP || r == nil {
			r, lastEP = snap.byAddr[eps[i].Addr().Unmap()], eps[i]
		}
		if r == nil {
			sw.host.drop(dropUnknownPeer, 1)
			continue
		}
		if r.roaming && !encrypted {
			// A peer without an address is known by its tunnel address,
			// which only WireGuard can vouch for: plain VXLAN from it is
			// forged.
			sw.dropFrom(r, dropPlaintext)
			continue
		}
		if err := hdr.Decode(d); err != nil {
			if errors.Is(err, encap.ErrNoIFlag) {
				sw.dropFrom(r, dropBadFlags)
			} else {
				sw.dropFrom(r, dropShort)
			}
			continue
		}
		frame := d[encap.HeaderLen:]
		if eth.Decode(frame) != nil {
			sw.dropFrom(r, dropShort)
			continue
		}
		if hdr.VNI != lastVNI {
			nv, lastVNI = snap.byVNI[hdr.VNI], hdr.VNI
		}
		switch {
		case nv == nil:
			sw.dropFrom(r, dropUnknownVNI)
			continue
		case nv.encrypted && !encrypted:
			sw.dropFrom(r, dropPlaintext)
			continue
		case eth.Src.IsMulticast() || eth.Src.IsZero():
			sw.dropFrom(r, dropMalformed)
			continue
		case eth.Src == nv.net.gw.mac:
			// Every host has its own gateway with this MAC; another host's
			// gateway frames are never ours.
			sw.dropFrom(r, dropSpoofed)
			continue
		}
		if run.r != r || run.n != nv.net {
			run.flush()
			run.r, run.n = r, nv.net
			last.valid = false
			learnedFrom = nil
			if !encrypted {
				sw.heardFrom(r, now)
			}
		}
		if eth.Src != learned || learnedFrom != r {
			learnedRes = nv.net.fdb.learn(eth.Src, nil, r, now)
			learned, learnedFrom = eth.Src, r
			if learnedRes == learnFull {
				nv.net.stats.drop(dropFDBFull, 1)
				sw.host.drop(dropFDBFull, 1)
			}
		}
		if learnedRes == learnOwned {
			// A source MAC that a local port owns, or that a gossip
			// record places behind another peer: forged.
			sw.dropFrom(r, dropSpoofed)
			continue
		}
		clampFromPeer(frame, eth.Type, r, nv)
		run.frames++
		run.bytes += len(frame)
		hostFrames++
		hostBytes += len(frame)
		if !eth.Dst.IsMulticast() {
			if eth.Dst != last.mac || !last.valid {
				last.lp, last.rp = nv.net.fdb.lookup(eth.Dst)
				last.mac, last.valid = eth.Dst, true
			}
			if last.lp != nil {
				s.addLocal(last.lp, frame)
				continue
			} else if last.rp != nil {
				// Known to live behind another peer: not ours to deliver.
				nv.net.stats.drop(dropNoPort, 1)
				continue
			}
		}
		for _, lp := range nv.ports {
			s.addLocal(lp, frame)
		}
	}
	run.flush()
	sw.host.rx(hostFrames, hostBytes)
	for i := 0; i < s.nLocal; i++ {
		g := &s.local[i]
		sw.deliver(g.p, g.frames, g.bytes)
	}
}

// peerSilence is how long a peer with a WireGuard key may send no plain
// VXLAN before its next datagram counts as a sign of life.
const peerSilence = 10 * time.Second

// heardFrom notes, at now (unix ns), a valid plain VXLAN datagram from r.
// The first one, and the first after peerSilence without any, say the peer
// is alive (it started, restarted, or a cut healed) as gossip's join does,
// and perhaps before it: the encrypted path then starts a handshake at
// once (CryptoConn.PeerAlive), rather than after WireGuard's 5 s retry of
// an initiation lost while the peer was away, and a peer that runs no
// gossip (kernel VXLAN with WireGuard) gets the same. A working session
// is left alone, so a forged datagram costs at most one handshake per
// peerSilence. The time is stored at most once a second per peer.
func (sw *Switch) heardFrom(r *peer, now int64) {
	last := r.heard.Load()
	if now-last < int64(time.Second) || !r.heard.CompareAndSwap(last, now) {
		return
	}
	if now-last >= int64(peerSilence) && r.key != ([32]byte{}) && sw.enc != nil {
		sw.enc.PeerAlive(r.name)
	}
}

// rxRun sums the counters of consecutive datagrams from one peer on one
// network.
type rxRun struct {
	r      *peer
	n      *network
	frames int
	bytes  int
}

func (u *rxRun) flush() {
	if u.frames > 0 {
		u.r.stats.rx(u.frames, u.bytes)
		u.n.stats.rx(u.frames, u.bytes)
	}
	u.frames, u.bytes = 0, 0
}

// dropFrom counts a datagram from peer r dropped for reason.
func (sw *Switch) dropFrom(r *peer, reason dropReason) {
	r.stats.drop(reason, 1)
	sw.host.drop(reason, 1)
}
