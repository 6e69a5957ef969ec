package crypto

import "sync/atomic"

// DropReason says why a datagram or inner packet was dropped.
type DropReason int

// The reasons Stats counts drops under. DropNone is no drop.
const (
	DropNone DropReason = iota
	// DropShort: an inner packet shorter than an IPv4 header.
	DropShort
	// DropNotIPv4: an inner packet whose version is not 4.
	DropNotIPv4
	// DropBadHeader: IHL, total length or UDP length inconsistent.
	DropBadHeader
	// DropBadChecksum: wrong IPv4 header checksum.
	DropBadChecksum
	// DropFragment: an IPv4 fragment (never reassembled).
	DropFragment
	// DropNotUDP: an inner packet that is not UDP.
	DropNotUDP
	// DropWrongDst: an inner packet not addressed to our tunnel address.
	DropWrongDst
	// DropWrongPort: an inner UDP packet not addressed to port 4789.
	DropWrongPort
	// DropUnknownSource: an inner packet from a tunnel address that maps
	// to no configured peer (only during a Reconfigure).
	DropUnknownSource
	// DropTooBig: a datagram that does not fit the inner MTU.
	DropTooBig
	// DropQueueFull: a datagram dropped because the queue between the
	// caller and WireGuard (either direction) stayed full.
	DropQueueFull
	// DropUnknownPeer: Write to an ID that is no configured peer.
	DropUnknownPeer
	// DropClosed: Write after Close.
	DropClosed

	// NumDropReasons is the number of DropReason values.
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	DropNone:          "none",
	DropShort:         "short",
	DropNotIPv4:       "not_ipv4",
	DropBadHeader:     "bad_header",
	DropBadChecksum:   "bad_checksum",
	DropFragment:      "fragment",
	DropNotUDP:        "not_udp",
	DropWrongDst:      "wrong_dst",
	DropWrongPort:     "wrong_port",
	DropUnknownSource: "unknown_source",
	DropTooBig:        "too_big",
	DropQueueFull:     "queue_full",
	DropUnknownPeer:   "unknown_peer",
	DropClosed:        "closed",
}

// String returns the reason's metric label, such as "bad_checksum".
func (r DropReason) String() string {
	if r < 0 || r >= NumDropReasons {
		return "unknown"
	}
	return dropNames[r]
}

// Stats are a Device's data-path counters since New. All counters only
// grow. A Stats is a copy, owned by the caller.
type Stats struct {
	// TxPackets and TxBytes count datagrams handed to WireGuard by Write
	// (bytes of VXLAN datagram, without the inner headers).
	TxPackets, TxBytes uint64
	// RxPackets and RxBytes count datagrams returned by Read.
	RxPackets, RxBytes uint64
	// InnerRxPackets counts the inner packets that are not VXLAN handed
	// to the inner stack (Config.InnerPort), InnerTxPackets the packets
	// it sent that were queued for encryption.
	InnerRxPackets, InnerTxPackets uint64
	// Drops counts dropped datagrams and inner packets by reason.
	Drops [NumDropReasons]uint64
}

// counters are the live, atomically updated form of Stats. Each field is
// updated once per batch where possible, so the data path pays a few
// atomic adds per batch rather than per datagram.
type counters struct {
	txPackets, txBytes atomic.Uint64
	rxPackets, rxBytes atomic.Uint64
	innerRx, innerTx   atomic.Uint64
	drops              [NumDropReasons]atomic.Uint64
}

func (c *counters) drop(r DropReason, n int) {
	if n > 0 {
		c.drops[r].Add(uint64(n))
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		InnerRxPackets: c.innerRx.Load(), InnerTxPackets: c.innerTx.Load(),
	}
	for i := range c.drops {
		s.Drops[i] = c.drops[i].Load()
	}
	return s
}
