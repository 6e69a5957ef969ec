package api

// TAPStats are the counters of a container's TAP device (EndpointStatus.TAP):
// what the kernel handed over and took, beside the switch's own frame
// counts in Counters.
type TAPStats struct {
	RxReads       uint64 `json:"rx_reads"`        // read(2) calls that returned a frame
	RxSuperframes uint64 `json:"rx_superframes"`  // TSO superframes segmented into frames
	RxFrames      uint64 `json:"rx_frames"`       // frames read from the container
	RxDropped     uint64 `json:"rx_dropped"`      // superframes dropped as malformed or too large
	TxWrites      uint64 `json:"tx_writes"`       // writev(2) calls that succeeded
	TxFrames      uint64 `json:"tx_frames"`       // frames written to the container
	TxCoalesced   uint64 `json:"tx_coalesced"`    // frames written as part of a GSO superframe
	TxBadChecksum uint64 `json:"tx_bad_checksum"` // TCP segments not coalesced for a bad checksum
	TxDropped     uint64 `json:"tx_dropped"`      // frames dropped: malformed, or refused by the kernel
}

// WireGuardStats are the encrypted connection's data-path counters
// (Status.WireGuard): VXLAN datagrams handed to WireGuard and returned by
// it, and what it dropped by reason. Per-peer WireGuard bytes are in
// PeerStatus.WireGuard.
type WireGuardStats struct {
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"` // bytes of VXLAN datagram, without inner headers
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// InnerRxPackets counts the packets between tunnel addresses that are
	// not VXLAN (the control plane's way to a peer without an underlay
	// address) handed to the daemon's inner stack; InnerTxPackets those it
	// sent.
	InnerRxPackets uint64 `json:"inner_rx_packets"`
	InnerTxPackets uint64 `json:"inner_tx_packets"`
	// Drops counts drops by reason: short, not_ipv4, bad_header,
	// bad_checksum, fragment, not_udp, wrong_dst, wrong_port,
	// unknown_source, too_big, queue_full, unknown_peer, closed.
	Drops map[string]uint64 `json:"drops,omitempty"`
}

// Offload is the UDP offload state of the underlay sockets (Status.Offload).
type Offload struct {
	// UDPGRO reports whether the receiving socket gets coalesced
	// datagrams (UDP GRO).
	UDPGRO bool `json:"udp_gro"`
	// GSOSockets of TxSockets sending sockets send runs of datagrams with
	// UDP GSO; a socket turns GSO off for good when the kernel refuses it.
	GSOSockets int `json:"udp_gso_sockets"`
	TxSockets  int `json:"tx_sockets"`
}

// DNSStats are the counters of a network's DNS server (NetworkStatus.DNS).
// Each query is counted once in Queries and once in UDP or TCP.
type DNSStats struct {
	// Queries counts queries by result: noerror, nxdomain, nodata,
	// refused, formerr, notimp, servfail, forwarded, dropped.
	Queries     map[string]uint64 `json:"queries"`
	UDP         uint64            `json:"udp"`          // queries received over UDP
	TCP         uint64            `json:"tcp"`          // queries received over TCP
	Truncated   uint64            `json:"truncated"`    // UDP answers cut to the client's size (TC set)
	TCPRejected uint64            `json:"tcp_rejected"` // TCP connections closed at once: too many open
}
