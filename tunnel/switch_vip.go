package tunnel

// VIP services: destination NAT per flow in the switch at the sender's
// host, no proxy and no extra copy.
//
//	container ── TCP/UDP to VIP:port ──▶ switchFromPort (after the guard)
//	    vipForward: flow table of the sending port, keyed by
//	      (protocol, client port, service port)
//	      hit with a live backend → that backend
//	      miss → a new flow: the next live backend in turn (a TCP
//	        segment without SYN that missed goes by a hash of its key, so
//	        that a flow whose entry aged keeps its backend while the set
//	        is unchanged)
//	    rewrite in place: IPv4 destination → backend, Ethernet
//	      destination → backend MAC, IPv4 and TCP/UDP checksums updated
//	      incrementally (RFC 1624)
//	    then the FDB decides as for any frame: a local port or a peer
//	ICMP echo request to VIP, while it has a live backend
//	    vipEcho: answered in place from the VIP, back to the client, as a
//	      host answers ping (anything else of ICMP to a VIP is dropped)
//	backend's reply ──▶ deliver to the client's port
//	    vipReverse: the same key from the reply's ports, backend = the
//	      reply's source → source address back to the VIP, source MAC to
//	      the VIP's MAC
//
// The backend sees the client's own address. Frames the switch reads
// have complete checksums: the TAP reader completes partial ones and
// segments TSO superframes (tap/segment.go), and the TAP writer verifies
// TCP checksums before it coalesces (tap/coalesce.go), so the incremental
// update keeps every frame valid for both.
//
// Each port has a fixed-size table, made on its first VIP flow. One
// goroutine writes it (the port's reader); the goroutines that deliver
// replies read it, each slot guarded by a sequence counter (a seqlock),
// so nothing is locked and nothing is allocated per frame. A slot is free
// when invalid or idle for vipIdle; a flow that finds its probe window
// full of live flows is refused and counted (vip_table_full); a closed
// flow still lingering gives its slot to a new flow. A new flow takes the
// first free slot of its window and a freed slot keeps a nonzero key
// (vipGone), so a slot never written ends every lookup: a frame of no
// VIP flow costs a probe or two, not the whole window.

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

const (
	// vipTableSize is the number of flows one port can hold (a power of
	// 2): 256 KiB, made only for a port that uses a VIP.
	vipTableSize = 8192
	// vipProbes bounds the slots one lookup visits.
	vipProbes = 16
	// vipIdle is how long, in seconds, an idle flow keeps its slot.
	vipIdle = 300
	// vipLinger is how long a flow keeps its slot after the client sent
	// FIN or RST: long enough for the server's last segments, whose
	// reverse NAT needs the slot; the client's last ACK finds the same
	// endpoint without it (by hash) while the set is unchanged.
	vipLinger = 1
)

// Offsets and values of the headers vipForward reads.
const (
	ipOff       = ether.HeaderLen
	protoTCP    = ipv4.ProtoTCP
	protoUDP    = ipv4.ProtoUDP
	tcpFlagFIN  = ipv4.TCPFlagFIN
	tcpFlagSYN  = ipv4.TCPFlagSYN
	tcpFlagRST  = ipv4.TCPFlagRST
	tcpFlagACK  = ipv4.TCPFlagACK
	validBit    = uint64(1) << 63
	vipGone     = uint64(1)         // key of a freed slot: invalid, but not never written
	vipNotVIP   = -1                // vipForward: not for a VIP, switch as usual
	vipRewrote  = -2                // vipForward: rewritten to a backend
	vipEchoed   = -3                // vipForward: answered in place, back to the sender
	minL4Header = ipv4.UDPHeaderLen // UDP header; TCP needs its whole minimal header for its flags and checksum
)

// vipService is a service as the data path sees it: its VIP and the live
// endpoints named or aliased like it, in the snapshot's netView.vips.
// Immutable but for rr.
type vipService struct {
	vip      [4]byte
	mac      MAC // what proxy ARP answers for the VIP
	backends []vipBackend
	live     map[[4]byte]MAC
	rr       atomic.Uint32 // round robin of new flows
}

// vipBackend is one endpoint of a service.
type vipBackend struct {
	ip  [4]byte
	mac MAC
}

// vipFlow is one slot of a port's flow table. seq is odd while the port's
// reader writes the slot.
type vipFlow struct {
	seq   atomic.Uint32
	key   atomic.Uint64 // validBit | proto<<32 | client port<<16 | service port
	addrs atomic.Uint64 // VIP<<32 | backend
	last  atomic.Int64  // unix seconds of the client's last frame; a closed flow is backdated
}

// vipTable is a port's flow table.
type vipTable struct {
	flows [vipTableSize]vipFlow
}

func vipKey(proto byte, client, service uint16) uint64 {
	return validBit | uint64(proto)<<32 | uint64(client)<<16 | uint64(service)
}

func vipHash(k uint64) uint32 { return uint32((k * 0x9e3779b97f4a7c15) >> 40) }

func be32v(b [4]byte) uint64 { return uint64(binary.BigEndian.Uint32(b[:])) }

// l4 locates the transport header of an IPv4 frame: it returns the
// protocol, the offset of the header, and ok for an unfragmented TCP or
// UDP packet whose headers fit in the frame.
func l4(frame []byte) (proto byte, off int, ok bool) {
	if len(frame) < ipOff+ipv4.MinHeaderLen || frame[ipOff]>>4 != 4 {
		return 0, 0, false
	}
	ihl := int(frame[ipOff]&0x0f) * 4
	off = ipOff + ihl
	proto = frame[ipOff+9]
	frag := binary.BigEndian.Uint16(frame[ipOff+6:])
	need := minL4Header
	if proto == protoTCP {
		need = ipv4.TCPMinHeaderLen
	}
	if ihl < ipv4.MinHeaderLen || frag&ipv4.FragMask != 0 || (proto != protoTCP && proto != protoUDP) || len(frame) < off+need {
		return 0, 0, false
	}
	return proto, off, true
}

// vipForward rewrites frame, IPv4 from port p, when it is for a VIP of
// the network. It returns vipNotVIP, vipRewrote, or the drop reason.
// now is the batch's clock in unix seconds.
func vipForward(p *port, nv *netView, frame []byte, now int64) int {
	if len(frame) < ipOff+20 {
		return vipNotVIP
	}
	svc := nv.vips[[4]byte(frame[ipOff+16:ipOff+20])]
	if svc == nil {
		if t := p.vipt.Load(); t != nil {
			vipForget(t, frame)
		}
		return vipNotVIP
	}
	if frame[ipOff+9] == ipv4.ProtoICMP && len(svc.backends) > 0 && vipEcho(frame, svc) {
		return vipEchoed
	}
	proto, off, ok := l4(frame)
	if !ok || len(svc.backends) == 0 {
		return int(dropVIPUnserved)
	}
	client, service := binary.BigEndian.Uint16(frame[off:]), binary.BigEndian.Uint16(frame[off+2:])
	k := vipKey(proto, client, service)
	var flags byte
	if proto == protoTCP {
		flags = frame[off+13]
	}
	t := p.vipt.Load()
	if t == nil {
		t = new(vipTable) // once per port, on its first VIP flow
		p.vipt.Store(t)
	}
	vip := be32v(svc.vip)
	h := vipHash(k)
	newFlow := proto == protoUDP || flags&(tcpFlagSYN|tcpFlagACK) == tcpFlagSYN
	var slot, closed *vipFlow
	var be vipBackend
	for i := range uint32(vipProbes) {
		f := &t.flows[(h+i)&(vipTableSize-1)]
		fk := f.key.Load()
		if fk == 0 {
			// Never written: no flow lies further on.
			if slot == nil {
				slot = f
			}
			break
		}
		idle, addrs := now-f.last.Load(), f.addrs.Load()
		if fk == k && addrs>>32 == vip && idle < vipIdle {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(addrs))
			if mac, live := svc.live[b]; live {
				be = vipBackend{ip: b, mac: mac}
			}
			slot = f
			break
		}
		if slot == nil && (fk&validBit == 0 || idle >= vipIdle) {
			slot = f
		}
		if closed == nil && idle >= vipIdle-vipLinger {
			closed = f
		}
	}
	if slot == nil && closed != nil && newFlow {
		// A new flow takes the slot of a closed one still lingering
		// rather than be refused: at more new connections a second than
		// the table holds, lingering flows would fill every window. The
		// closed flow loses only its last segments' reverse NAT.
		slot = closed
	}
	if slot == nil {
		return int(dropVIPFull)
	}
	if be.mac.IsZero() {
		// A new flow, or one whose backend left.
		if newFlow {
			be = svc.backends[svc.rr.Add(1)%uint32(len(svc.backends))]
		} else {
			be = svc.backends[h%uint32(len(svc.backends))]
		}
		slot.seq.Add(1)
		slot.key.Store(k)
		slot.addrs.Store(vip<<32 | be32v(be.ip))
		slot.seq.Add(1)
	}
	last := now
	if flags&(tcpFlagFIN|tcpFlagRST) != 0 {
		last = now - vipIdle + vipLinger
	}
	slot.last.Store(last)
	rewriteAddr(frame, off, proto, ipOff+16, svc.vip, be.ip)
	copy(frame[ether.OffDst:], be.mac[:])
	return vipRewrote
}

// vipForget frees the slot of a VIP flow whose ports a new flow of the
// client to that flow's endpoint directly now uses (a TCP SYN, or any UDP
// datagram): the endpoint's replies to the new flow must not get the VIP
// as their source. The kernel reuses source ports across destinations,
// so a direct connection soon after a VIP one is common.
func vipForget(t *vipTable, frame []byte) {
	proto, off, ok := l4(frame)
	if !ok || (proto == protoTCP && frame[off+13]&(tcpFlagSYN|tcpFlagACK) != tcpFlagSYN) {
		return
	}
	k := vipKey(proto, binary.BigEndian.Uint16(frame[off:]), binary.BigEndian.Uint16(frame[off+2:]))
	dst := be32v([4]byte(frame[ipOff+16 : ipOff+20]))
	h := vipHash(k)
	for i := range uint32(vipProbes) {
		f := &t.flows[(h+i)&(vipTableSize-1)]
		fk := f.key.Load()
		if fk == 0 {
			return
		}
		if fk == k && f.addrs.Load()&0xffffffff == dst {
			f.seq.Add(1)
			f.key.Store(vipGone)
			f.seq.Add(1)
		}
	}
}

// vipReverse restores the VIP as the source of a backend's reply to port
// p, in place, when frame belongs to one of p's live VIP flows (now is
// the clock in unix seconds). It is called for every frame delivered to a
// port that has a flow table.
func vipReverse(t *vipTable, frame []byte, now int64) {
	if len(frame) < ipOff+20 || binary.BigEndian.Uint16(frame[ether.OffType:]) != ether.TypeIPv4 {
		return
	}
	proto, off, ok := l4(frame)
	if !ok {
		return
	}
	service, client := binary.BigEndian.Uint16(frame[off:]), binary.BigEndian.Uint16(frame[off+2:])
	k := vipKey(proto, client, service)
	src := be32v([4]byte(frame[ipOff+12 : ipOff+16]))
	h := vipHash(k)
	for i := range uint32(vipProbes) {
		f := &t.flows[(h+i)&(vipTableSize-1)]
		s := f.seq.Load()
		key, addrs := f.key.Load(), f.addrs.Load()
		if key == 0 {
			return // never written: no flow lies further on
		}
		if s&1 != 0 || f.seq.Load() != s || key != k || addrs&0xffffffff != src || now-f.last.Load() >= vipIdle {
			continue
		}
		var vip [4]byte
		binary.BigEndian.PutUint32(vip[:], uint32(addrs>>32))
		rewriteAddr(frame, off, proto, ipOff+12, [4]byte(frame[ipOff+12:ipOff+16]), vip)
		mac := deriveMAC(netip.AddrFrom4(vip))
		copy(frame[ether.OffSrc:], mac[:])
		return
	}
}

// rewriteAddr replaces the IPv4 address at frame[at:at+4], old, with new
// and updates the IPv4 header checksum and the TCP or UDP checksum (whose
// pseudo-header holds the address) incrementally, RFC 1624 eq. 3.
func rewriteAddr(frame []byte, l4off int, proto byte, at int, old, new [4]byte) {
	copy(frame[at:], new[:])
	csumReplace(frame[ipOff+10:], old, new)
	switch proto {
	case protoTCP:
		csumReplace(frame[l4off+16:], old, new)
	case protoUDP:
		c := frame[l4off+6:]
		if c[0] == 0 && c[1] == 0 {
			return // no checksum
		}
		csumReplace(c, old, new)
		if c[0] == 0 && c[1] == 0 {
			c[0], c[1] = 0xff, 0xff // RFC 768: a computed zero is sent as all ones
		}
	}
}

// csumReplace updates the checksum in c[0:2] for a 32-bit field changed
// from old to new.
func csumReplace(c []byte, old, new [4]byte) {
	binary.BigEndian.PutUint16(c, ipv4.UpdateChecksumAddr(binary.BigEndian.Uint16(c), old, new))
}

// vipEcho turns frame, when it is an ICMP echo request to svc's VIP, into
// the echo reply from the VIP to its sender, in place, and reports
// whether it did. Swapping the addresses leaves the IPv4 checksum as it
// was; the ICMP checksum follows the type's change (RFC 1624). So `ping
// web` says that the service is there, as it does for a container.
func vipEcho(frame []byte, svc *vipService) bool {
	ip := frame[ipOff:]
	e, ok := ipv4.ParseEcho(ip)
	if !ok || e.Type != ipv4.ICMPEchoRequest {
		return false
	}
	copy(ip[ipv4.OffDst:ipv4.OffDst+4], e.Src[:])
	copy(ip[ipv4.OffSrc:ipv4.OffSrc+4], svc.vip[:])
	m := ip[int(ip[0]&0x0f)*4:]
	m[0] = ipv4.ICMPEchoReply
	c := ipv4.UpdateChecksum(binary.BigEndian.Uint16(m[2:]), uint16(ipv4.ICMPEchoRequest)<<8, uint16(ipv4.ICMPEchoReply)<<8)
	binary.BigEndian.PutUint16(m[2:], c)
	copy(frame[ether.OffDst:ether.OffDst+6], frame[ether.OffSrc:ether.OffSrc+6])
	copy(frame[ether.OffSrc:ether.OffSrc+6], svc.mac[:])
	return true
}
