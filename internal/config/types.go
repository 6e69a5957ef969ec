// Package config loads and validates the vxwire peer config file (TOML).
//
// Loading is strict: unknown keys are errors, and every error names the
// file, the line and the field, as in "h1.toml:12: network[0].gateway:
// 10.9.0.1 is outside subnet 10.77.0.0/24".
//
// Parse decodes and validates a document without touching the filesystem;
// Load reads a file, parses it and checks the paths it names. Both report
// every problem they find at once, as Errors (or a single *Error). A Config
// keeps the line of each field so that Config.Errorf can report later
// problems, found by the daemon at run time, against the file. Encode
// writes a Config back in canonical form.
package config

import (
	"net"
	"net/netip"
)

// Defaults for fields the file may leave out.
const (
	DefaultPort      = 4789
	DefaultStateDir  = "/var/lib/vxwire"
	DefaultAPISocket = "/run/vxwire/vxwire.sock"
	DefaultIfName    = "eth0"
	// MinVNI is the lowest VNI a network may use; lower ones are left to
	// other overlays on the same underlay, as Docker does.
	MinVNI = 256
	// MaxVNI is the largest 24-bit VNI.
	MaxVNI = 1<<24 - 1
)

// Config is one host's validated configuration. It is immutable once
// returned by Load or Parse; the daemon swaps whole Configs on reload.
type Config struct {
	// File is the path the config was read from (for messages).
	File string
	// Host describes this host.
	Host Host
	// Peers are the other hosts that carry the overlay.
	Peers []Peer
	// Networks are the overlay networks this host takes part in.
	Networks []Network
	// Endpoints are containers attached at start-up.
	Endpoints []Endpoint

	// lines maps field paths to their line in File, for Errorf. It is
	// nil for a Config built in code rather than parsed.
	lines lineMap
}

// Host is the [host] table.
type Host struct {
	// Name identifies the host in the cluster (required).
	Name string
	// Address is the underlay IPv4 address the data path binds to
	// (required).
	Address netip.Addr
	// Port is the VXLAN UDP port (default 4789).
	Port uint16
	// StateDir holds persistent state (default /var/lib/vxwire).
	StateDir string
	// APISocket is the unix socket of the daemon's API (default
	// /run/vxwire/vxwire.sock).
	APISocket string
	// MTU is the underlay MTU; 0 means detect it from the interface that
	// holds Address.
	MTU int
}

// Peer is one [[peer]] table: another host running vxwire or kernel VXLAN.
type Peer struct {
	// Name identifies the peer (required, unique).
	Name string
	// Address is the peer's underlay IPv4 address (required, unique, not
	// the host's own).
	Address netip.Addr
	// Port is the peer's VXLAN UDP port (default: the host's port).
	Port uint16
}

// AddrPort is the peer's VXLAN endpoint.
func (p Peer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Address, p.Port) }

// Network is one [[network]] table: an isolated L2 segment with its own VNI.
type Network struct {
	// Name identifies the network (required, unique).
	Name string
	// VNI is the 24-bit VXLAN network identifier, MinVNI..MaxVNI (required,
	// unique).
	VNI uint32
	// Subnet is the IPv4 subnet of the network (required, unique, must not
	// overlap another network's).
	Subnet netip.Prefix
	// Gateway is the gateway address (default: the first host address of
	// Subnet); it must lie inside Subnet and not be its network or
	// broadcast address.
	Gateway netip.Addr
	// MTU is the container MTU; 0 means underlay MTU minus the VXLAN
	// overhead. Range 576..9000 when set.
	MTU int
}

// Endpoint is one [[endpoint]] table: a container attached at start-up.
type Endpoint struct {
	// Network is the name of a configured network (required).
	Network string
	// Name is the container's name, unique within its network (required).
	Name string
	// NetNS is the path of the container's network namespace, which must
	// exist (required).
	NetNS string
	// IfName is the TAP device name inside the namespace (default eth0,
	// at most 15 bytes).
	IfName string
	// Address is the container's IPv4 address inside the network's subnet,
	// not the gateway, unique in the network. The zero Addr means the
	// daemon allocates one.
	Address netip.Addr
	// MAC is the container's MAC address, unicast; nil means derived.
	MAC net.HardwareAddr
}
