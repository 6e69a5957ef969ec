package netstack

import (
	"encoding/binary"
	"sync"

	"github.com/vxwire/vxwire/internal/ether"
	vxip "github.com/vxwire/vxwire/internal/ipv4"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

// groLink coalesces the TCP segments of one Write into larger segments
// before the stack sees them (generic receive offload, gVisor's
// stack/gro), so that a bulk stream into the gateway's stack costs one
// pass through IP and TCP (demux, segment queue, receiver wakeup, ACK)
// per up to 64 KiB instead of per MTU-sized frame. The frames of one
// Write are the switch's batch for this port, so consecutive segments
// of a flow usually arrive together; nothing is held past the Write, so
// no timer is needed and no latency is added.
//
// It sits between the NIC and the ethernet.Endpoint that strips the
// Ethernet header:
//
//	NIC <- groLink <- ethernet.Endpoint <- link <- Gateway.Write
//
// gro.GRO is not safe for concurrent use, and Gateway.Write is, so Write
// holds mu (begin to end) across the delivery of its frames and the flush. The
// stack never calls back into Write while delivering (its replies go to
// the link's ring), so holding mu there cannot deadlock.
//
// GRO merges only segments whose checksums Write checked (validTCP), of
// one flow, with equal headers (addresses, ports, flags, ACK number,
// options), contiguous sequence numbers and equal sizes; anything else
// is delivered as it came, in order within its flow.
type groLink struct {
	nested.Endpoint

	mu  sync.Mutex
	gro gro.GRO // guarded by mu; its Dispatcher is the NIC behind resum
}

var _ stack.NetworkDispatcher = (*groLink)(nil)

// newGROLink wraps child, which delivers frames with the Ethernet header
// already parsed.
func newGROLink(child stack.LinkEndpoint) *groLink {
	g := &groLink{}
	g.Endpoint.Init(child, g)
	g.gro.Init(true)
	return g
}

// Attach implements stack.LinkEndpoint: the NIC attaching is also where
// coalesced packets go.
func (g *groLink) Attach(d stack.NetworkDispatcher) {
	g.mu.Lock()
	g.gro.Dispatcher = nil
	if d != nil {
		g.gro.Dispatcher = resum{d}
	}
	g.mu.Unlock()
	g.Endpoint.Attach(d)
}

// DeliverNetworkPacket implements stack.NetworkDispatcher: the child
// hands each inbound packet here, between begin and end.
func (g *groLink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if g.gro.Dispatcher == nil {
		return // detached
	}
	pkt.NetworkProtocolNumber = proto
	g.gro.Enqueue(pkt)
}

// begin starts a batch: the frames injected into the child until end are
// coalesced together.
func (g *groLink) begin() { g.mu.Lock() }

// end hands what GRO holds to the stack and ends the batch.
func (g *groLink) end() {
	if g.gro.Dispatcher != nil {
		g.gro.Flush()
	}
	g.mu.Unlock()
}

// validTCP reports whether f, an Ethernet frame carrying IPv4, is a TCP
// segment GRO may coalesce whose IPv4 header and TCP checksums are both
// correct: no IP options, not a fragment, no Ethernet padding. Write then
// marks its packet RXChecksumValidated, so that neither GRO nor IP nor
// TCP sums it again; any other frame is left to the stack's own checks.
// It computes the sums over the contiguous frame, which is cheaper than
// over the stack's buffer views, and it is needed as well as cheaper:
// gro.GRO's own TCP check sums from the start of the buffer, Ethernet
// header included, so it never matches and GRO would merge nothing.
func validTCP(f []byte) bool {
	if len(f) < ether.HeaderLen+vxip.MinHeaderLen+tcpMinHeaderLen {
		return false
	}
	ip := f[ether.HeaderLen:]
	total := int(binary.BigEndian.Uint16(ip[vxip.OffTotalLen:]))
	if ip[0] != 0x45 || ip[vxip.OffProto] != vxip.ProtoTCP || total != len(ip) ||
		binary.BigEndian.Uint16(ip[vxip.OffFlags:])&vxip.FragMask != 0 {
		return false
	}
	if vxip.Checksum(ip[:vxip.MinHeaderLen], 0) != 0xffff {
		return false
	}
	seg := ip[vxip.MinHeaderLen:]
	var pseudo [12]byte
	copy(pseudo[0:8], ip[vxip.OffSrc:vxip.OffDst+4])
	pseudo[9] = vxip.ProtoTCP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(len(seg)))
	return vxip.Checksum(seg, vxip.Checksum(pseudo[:], 0)) == 0xffff
}

// tcpMinHeaderLen is the length of a TCP header without options.
const tcpMinHeaderLen = 20

// resum hands GRO's packets to the NIC after giving a coalesced segment
// the checksums of the whole. gro.GRO lengthens the IP header and leaves
// both checksums as the first segment had them, counting on a link that
// offloads receive checksums; this link does not, so the NIC has IP and
// TCP verify every packet, as they did before GRO, merged ones included.
// A merged packet is one whose IP header checksum no longer holds: Write
// passed GRO only segments whose both checksums held (validTCP).
type resum struct{ nic stack.NetworkDispatcher }

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (r resum) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if pkt.RXChecksumValidated {
		fixMerged(pkt)
	}
	r.nic.DeliverNetworkPacket(proto, pkt)
}

// DeliverLinkPacket implements stack.NetworkDispatcher.
func (r resum) DeliverLinkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	r.nic.DeliverLinkPacket(proto, pkt)
}

// fixMerged rewrites the IP header and TCP checksums of pkt, an IPv4 TCP
// segment without IP options whose data starts at the IP header, if GRO
// merged it. The headers are in the first segment's buffer, which GRO
// also writes through.
func fixMerged(pkt *stack.PacketBuffer) {
	hdr, ok := pkt.Data().PullUp(vxip.MinHeaderLen + tcpMinHeaderLen)
	if !ok || vxip.Checksum(hdr[:vxip.MinHeaderLen], 0) == 0xffff {
		return // not merged
	}
	ip := hdr[:vxip.MinHeaderLen]
	binary.BigEndian.PutUint16(ip[vxip.OffChecksum:], 0)
	binary.BigEndian.PutUint16(ip[vxip.OffChecksum:], ^vxip.Checksum(ip, 0))
	segLen := int(binary.BigEndian.Uint16(ip[vxip.OffTotalLen:])) - vxip.MinHeaderLen
	tcp := hdr[vxip.MinHeaderLen:]
	binary.BigEndian.PutUint16(tcp[tcpOffChecksum:], 0)
	var pseudo [12]byte
	copy(pseudo[0:8], ip[vxip.OffSrc:vxip.OffDst+4])
	pseudo[9] = vxip.ProtoTCP
	binary.BigEndian.PutUint16(pseudo[10:], uint16(segLen))
	sum := vxip.Checksum(pseudo[:], 0)
	// The segment is the data after the IP header: walk the packet's
	// views from there (AsViewList's offset is where the headers
	// start; the link header was consumed, the IP header not yet).
	views, skip := pkt.AsViewList()
	skip += len(pkt.LinkHeader().Slice()) + vxip.MinHeaderLen
	odd := false
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		b, skip = b[skip:], 0
		s := vxip.Checksum(b, 0)
		if odd { // this part starts at an odd offset of the segment
			s = s<<8 | s>>8
		}
		sum = addSum(sum, s)
		odd = odd != (len(b)%2 == 1)
	}
	binary.BigEndian.PutUint16(tcp[tcpOffChecksum:], ^sum)
}

// addSum adds two ones'-complement sums.
func addSum(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// tcpOffChecksum is the offset of the checksum in a TCP header.
const tcpOffChecksum = 16
