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
	Host      string           `json:"host"`
	Address   string           `json:"address"` // underlay ip:port
	Networks  []NetworkStatus  `json:"networks"`
	Peers     []PeerStatus     `json:"peers"`
	Endpoints []EndpointStatus `json:"endpoints"`
	// Failed are endpoints attached through the API that this daemon did
	// not attach again after a restart, with the reason; `vxwire detach`
	// removes them and frees their address.
	Failed   []FailedEndpoint `json:"failed,omitempty"`
	Counters Counters         `json:"counters"` // whole-host totals
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
}

// PeerStatus describes one peer host. Rx counts frames received from it,
// Tx frames sent to it.
type PeerStatus struct {
	Name     string   `json:"name"`
	Address  string   `json:"address"` // ip:port
	Counters Counters `json:"counters"`
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
}
