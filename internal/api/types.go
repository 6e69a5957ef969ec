// Package api holds the types, server and client of the daemon's unix-socket
// HTTP+JSON API, shared by the CLI and the runtime-facing modes.
package api

import "time"

// Drop reasons counted by the data path. They are part of the status API and
// the metrics, so they never change once released.
const (
	DropShort          = "short"           // datagram shorter than a VXLAN header plus an Ethernet header
	DropBadFlags       = "bad_flags"       // VXLAN I flag not set
	DropUnknownVNI     = "unknown_vni"     // VNI of no configured network
	DropUnknownPeer    = "unknown_peer"    // datagram from an address that is not a configured peer
	DropMalformedFrame = "malformed_frame" // Ethernet frame that cannot be parsed or has a group source MAC
	DropSpoofed        = "spoofed"         // frame from a container with a source MAC other than its own
	DropTapWrite       = "tap_write"       // the container's TAP refused the frame
	DropSend           = "send"            // the underlay socket refused the datagram
	DropNoPort         = "no_port"         // frame for a local port that is gone
	DropPlaintext      = "plaintext"       // unencrypted VXLAN for an encrypted network
	DropSpoofedIP      = "spoofed_ip"      // IPv4 packet from a container with a source address other than its own
	DropSpoofedARP     = "spoofed_arp"     // ARP from a container whose sender address or MAC is not its own
	DropEtherType      = "ethertype"       // frame from a container of a type the overlay does not carry (only IPv4 and ARP)
	DropFloodLimit     = "flood_limit"     // broadcast or unknown unicast beyond the port's flood rate ([host] flood_rate)
	DropFDBFull        = "fdb_full"        // source MAC not learned: the network's forwarding table is full (the frame still goes out)
	DropNoKey          = "no_key"          // frame for an encrypted network on a host without a WireGuard key
	DropTooBig         = "too_big"         // IPv4 packet with DF larger than the underlay path to its peer carries; answered with ICMP fragmentation needed
	DropVIPFull        = "vip_table_full"  // new flow to a VIP refused: the container's flow table is full
	DropVIPUnserved    = "vip_unserved"    // frame to a VIP that no endpoint can take: none is live, or it is not unfragmented TCP or UDP
)

// Drop reasons counted by a network's gateway (GatewayStatus). Like the
// data path's, they never change once released.
const (
	DropGatewayFiltered = "filtered"          // frame the gateway does not serve: another MAC, ARP for another address, ICMP other than echo to the outside
	DropGatewayIPv6     = "ipv6"              // IPv6 frame (the gateway is IPv4 only)
	DropGatewayQueue    = "queue_full"        // outbound packet dropped: the port's reader fell behind
	DropGatewayOversize = "oversize"          // outbound frame larger than the port's buffer
	DropEgressDenied    = "egress_denied"     // egress to a refused destination: the host, a peer, the overlay's ports, metadata, host.egress_deny
	DropSourceFlowLimit = "source_flow_limit" // egress flow refused: the container holds its maximum of flows
	DropFlowLimit       = "flow_limit"        // egress flow dropped: the network holds its maximum of flows
	DropUDPTooLarge     = "udp_too_large"     // egress UDP datagram over 16 KiB, not relayed
)

// Counters are frame and byte counts of one direction pair, plus drops by
// reason.
type Counters struct {
	RxFrames uint64            `json:"rx_frames"`
	RxBytes  uint64            `json:"rx_bytes"`
	TxFrames uint64            `json:"tx_frames"`
	TxBytes  uint64            `json:"tx_bytes"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
}

// Status is what GET /v1/status returns.
type Status struct {
	Host    string `json:"host"`
	Address string `json:"address"` // underlay ip:port
	// Rootless reports that the daemon runs in rootless mode (without
	// privileges; see host.rootless).
	Rootless  bool             `json:"rootless,omitempty"`
	Networks  []NetworkStatus  `json:"networks"`
	Peers     []PeerStatus     `json:"peers"`
	Endpoints []EndpointStatus `json:"endpoints"`
	Counters  Counters         `json:"counters"` // whole-host totals
	// Offload is the underlay sockets' UDP offload state.
	Offload Offload `json:"offload"`
	// Socks is the SOCKS5 proxy's state (host.socks); nil when it is off.
	Socks *SocksStatus `json:"socks,omitempty"`
	// Publishes are the published ports with this host's counters, as
	// GET /v1/publishes lists them.
	Publishes []Publish `json:"publishes,omitempty"`
	// WireGuard is the encrypted connection's counters; nil when the host
	// has no key.
	WireGuard *WireGuardStats `json:"wireguard,omitempty"`
	// Refused counts control-plane input refused, by reason: gossip
	// messages and records that fail the config rules, strangers and
	// failed handshakes on the gossip and replicated-log ports, and
	// network definitions this host does not apply.
	Refused map[string]uint64 `json:"refused,omitempty"`
	// Recovered counts panics recovered in goroutines that serve one
	// flow (an API request, a DNS or raft connection, an egress flow),
	// by the goroutine's kind. Each closed only its flow; each is logged
	// at Error with its stack. It should stay empty: anything here is a
	// bug worth reporting.
	Recovered map[string]uint64 `json:"recovered,omitempty"`
	// Process is the daemon's own resource use, for spotting leaks.
	Process ProcessStats `json:"process"`
	// Failed are endpoints attached through the API that this daemon did
	// not attach again after a restart, with the reason; `vxwire detach`
	// removes them and frees their address.
	Failed []FailedEndpoint `json:"failed,omitempty"`
}

// ProcessStats is the daemon process's resource use when the status was
// taken. Zero where the platform does not say (FDs and RSS come from
// /proc on Linux).
type ProcessStats struct {
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`       // open file descriptors
	RSSBytes   uint64 `json:"rss_bytes"` // resident set size
	// HeapBytes is the Go heap that the last garbage collection found
	// live: what a leak in the daemon's own data grows, without the
	// garbage and the not yet returned memory that RSS also holds.
	HeapBytes uint64 `json:"heap_bytes"`
}

// FailedEndpoint is a saved endpoint that could not be attached again.
type FailedEndpoint struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	NetNS   string `json:"netns"`
	Reason  string `json:"reason"`
}

// NetworkStatus describes one network.
type NetworkStatus struct {
	Name     string   `json:"name"`
	VNI      uint32   `json:"vni"`
	Subnet   string   `json:"subnet"`
	Gateway  string   `json:"gateway"`
	MTU      int      `json:"mtu"`
	Peers    []string `json:"peers"` // peer names the network floods to
	FDB      int      `json:"fdb_entries"`
	Counters Counters `json:"counters"`
	// GatewayStats describes the network's gateway on this host.
	GatewayStats *GatewayStatus `json:"gateway_stats,omitempty"`
	// DNS is the counters of the network's DNS server on this host; nil
	// when it does not run.
	DNS *DNSStats `json:"dns,omitempty"`
}

// GatewayStatus describes a network's gateway (ARP, DNS, egress NAT) on
// this host. Counters.Rx counts frames the gateway took from the network,
// Tx frames it sent into it (no byte counts); drops are by the
// DropGateway*, DropEgressDenied, DropSourceFlowLimit, DropFlowLimit,
// DropUDPTooLarge and DropMalformedFrame reasons.
type GatewayStatus struct {
	Counters        Counters `json:"counters"`
	EgressTCPOpen   uint64   `json:"egress_tcp_open"`    // egress TCP connections open now
	EgressTCPTotal  uint64   `json:"egress_tcp_total"`   // egress TCP connections accepted since start
	EgressUDPOpen   uint64   `json:"egress_udp_open"`    // egress UDP flows open now
	EgressUDPTotal  uint64   `json:"egress_udp_total"`   // egress UDP flows accepted since start
	DialErrors      uint64   `json:"egress_dial_errors"` // egress flows whose destination could not be reached
	EgressICMPOpen  uint64   `json:"egress_icmp_open"`   // egress ICMP echo flows open now
	EgressICMPTotal uint64   `json:"egress_icmp_total"`  // egress ICMP echo flows accepted since start
}

// PeerStatus describes one peer host. Rx counts frames received from it,
// Tx frames sent to it.
type PeerStatus struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"` // ip:port
	Counters Counters `json:"counters"`
	// PathMTU is the underlay path MTU to the peer as the kernel learnt it
	// (route MTU, lowered by ICMP "fragmentation needed"); 0 when unknown.
	// A network's packets to the peer fit when they are at most PathMTU
	// minus 50 (plain) or 110 (encrypted) bytes.
	PathMTU int `json:"path_mtu,omitempty"`
	// WireGuard state, present when the peer carries encrypted networks.
	WireGuard *WireGuardPeer `json:"wireguard,omitempty"`
}

// WireGuardPeer is the encrypted path's view of a peer.
type WireGuardPeer struct {
	PublicKey     string    `json:"public_key"`
	Endpoint      string    `json:"endpoint"`       // outer ip:port
	TunnelAddress string    `json:"tunnel_address"` // inner address
	LastHandshake time.Time `json:"last_handshake"` // zero: never
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
	KeyEpoch      uint64    `json:"key_epoch"` // preshared-key epoch in force; 0 when rotation is off
}

// EndpointStatus describes one local endpoint (container port). Rx counts
// frames read from the container, Tx frames written to it.
type EndpointStatus struct {
	Network  string   `json:"network"`
	Name     string   `json:"name"`
	NetNS    string   `json:"netns"`
	IfName   string   `json:"ifname"`
	Address  string   `json:"address"` // CIDR
	MAC      string   `json:"mac"`
	Counters Counters `json:"counters"`
	// TAP is the container device's own counters; nil for a device that
	// keeps none.
	TAP *TAPStats `json:"tap,omitempty"`
}

// SocksStatus is the SOCKS5 proxy's address and counters.
type SocksStatus struct {
	Listen       string `json:"listen"`
	Accepted     uint64 `json:"accepted"`      // clients accepted
	Open         uint64 `json:"open"`          // clients served now
	OverLimit    uint64 `json:"over_limit"`    // clients closed at accept: too many at once
	BadHandshake uint64 `json:"bad_handshake"` // clients cut off: malformed, no acceptable method, handshake deadline
	Refused      uint64 `json:"refused"`       // requests answered with an error reply
	UDPDropped   uint64 `json:"udp_dropped"`   // association datagrams dropped: malformed, fragment, foreign source, target limit
	Connects     uint64 `json:"connects"`      // CONNECTs relayed
	Associations uint64 `json:"associations"`  // UDP ASSOCIATEs served
}
