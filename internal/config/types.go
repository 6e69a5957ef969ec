// Package config loads and validates the vxwire peer config file (TOML).
//
// Loading is strict: unknown keys are errors, and every error names the
// file, the line and the field, as in "h1.toml:12: network[0].gateway:
// 10.9.0.1 is outside subnet 10.77.0.0/24".
//
// Parse decodes and validates a document without touching the filesystem;
// Load reads a file, parses it, checks the paths it names and reads the
// key and secret files, the group database and resolv.conf. Both report
// every problem they find at once, as Errors (or a single *Error). A Config
// keeps the line of each field so that Config.Errorf can report later
// problems, found by the daemon at run time, against the file.
// examples/reference.toml documents every key; a test keeps it complete.
package config

import (
	"net"
	"net/netip"
	"time"
)

// Defaults for fields the file may leave out.
const (
	DefaultPort      = 4789
	DefaultStateDir  = "/var/lib/vxwire"
	DefaultAPISocket = "/run/vxwire/vxwire.sock"
	DefaultIfName    = "eth0"
	// DefaultWGPort is the UDP port of the encrypted (WireGuard) path.
	DefaultWGPort = 51820
	// DefaultWGName is the name of the WireGuard interface.
	DefaultWGName = "vxwire0"
	// DefaultRotateEvery is how often preshared keys are rotated.
	DefaultRotateEvery = 12 * time.Hour
	// DefaultGossipPort is the port of the membership protocol.
	DefaultGossipPort = 7946
	// DefaultRaftPort is the TCP port of the replicated address-block log.
	DefaultRaftPort = 7948
	// DefaultPeerTimeout is how long a silent host keeps its records.
	DefaultPeerTimeout = 30 * time.Second
	// DefaultDNSPort is the port of a dns_upstream entry without one.
	DefaultDNSPort = 53
	// MinVNI is the lowest VNI a network may use; lower ones are left to
	// other overlays on the same underlay, as Docker does.
	MinVNI = 256
	// MaxVNI is the largest 24-bit VNI.
	MaxVNI = 1<<24 - 1
	// DefaultFloodRate is how many broadcast and unknown unicast frames
	// per second one container may send.
	DefaultFloodRate = 1000
	// DefaultFloodBurst is how many such frames a container may send at
	// once after a quiet spell.
	DefaultFloodBurst = 2000
	// MaxFloodRate bounds flood_rate and flood_burst.
	MaxFloodRate = 10_000_000
	// MaxProcs bounds procs.
	MaxProcs = 4096
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
	// Endpoints are containers attached at start-up, and host endpoints
	// (no NetNS): the daemon itself on a network.
	Endpoints []Endpoint
	// Publishes are the ports published into networks (see Publish).
	Publishes []Publish
	// Services are the names that get a virtual IP (see Service).
	Services []Service
	// Forwards are [[forward]] tables: local ports that reach the overlay
	// through a host endpoint.
	Forwards []Forward
	// Exposes are [[expose]] tables: ports of a host endpoint that reach
	// local services.
	Exposes []Expose

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
	// GossipAddress is the control plane's address, as Docker's
	// --advertise-addr beside --data-path-addr: gossip and the replicated
	// log bind to it and peers reach them there (default: Address).
	GossipAddress netip.Addr
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

	// PrivateKeyFile is the absolute path of the file holding the host's
	// WireGuard private key in base64, as wg genkey prints it (optional;
	// required when a network is encrypted). Load refuses the file when
	// it is readable, writable or executable by group or others.
	PrivateKeyFile string
	// PrivateKey is the decoded key of PrivateKeyFile. Load sets it; Parse
	// leaves it zero.
	PrivateKey [32]byte
	// HasPrivateKey reports whether PrivateKey was loaded.
	HasPrivateKey bool
	// SecretFile is the absolute path of the file holding the cluster
	// secret (optional). The same permission rule as for PrivateKeyFile
	// applies.
	SecretFile string
	// Secret is the content of SecretFile without trailing newlines, at
	// least 16 bytes. Load sets it; Parse leaves it nil.
	Secret []byte
	// WGPort is the UDP port of the encrypted path (default 51820).
	WGPort uint16
	// WGName is the name of the WireGuard interface (default vxwire0):
	// at most 15 bytes of A-Z, a-z, 0-9, '_', '.' and '-'.
	WGName string
	// TunnelAddress is the host's IPv4 address inside the encrypted path.
	// When the file leaves it out it is DeriveTunnelAddress(Address). No
	// two hosts may have the same one.
	TunnelAddress netip.Addr
	// RotateEvery is how often the preshared keys of the encrypted path
	// are rotated (default 12h, at least 1s); 0 disables rotation and
	// preshared keys.
	RotateEvery time.Duration
	// GossipPort is the port of the membership protocol (default 7946).
	GossipPort uint16
	// RaftPort is the TCP port of the replicated log that assigns address
	// blocks (default 7948); every vxwire host of the cluster must use the
	// same one.
	RaftPort uint16
	// PeerTimeout is how long after a host stops answering its records
	// are removed (default 30s, at least 1s).
	PeerTimeout time.Duration
	// DNSUpstream are the servers that names outside the overlay are
	// forwarded to. The file lists them as "IP" or "IP:PORT" (port 53 by
	// default). When the file lists none, Parse leaves the field empty
	// and Load fills it from the nameserver lines of the host's
	// resolv.conf (see ParseResolvConf); it stays empty if that file
	// names no usable server.
	DNSUpstream []netip.AddrPort
	// Metrics is the listen address of the Prometheus endpoint; the zero
	// AddrPort means metrics are off.
	Metrics netip.AddrPort
	// DockerPlugin is the unix socket on which the daemon serves Docker's
	// plugin protocol (network and IPAM driver "vxwire"); empty means off.
	// Docker finds plugins in /run/docker/plugins, so the usual path is
	// /run/docker/plugins/vxwire.sock.
	DockerPlugin string
	// APIGroup is the group that may use the API socket (optional): the
	// socket is then owned by that group with mode 0660.
	APIGroup string
	// APIGID is the numeric id of APIGroup, which Load looks up; it is -1
	// when APIGroup is unset, and after Parse.
	APIGID int
	// EgressDeny are destinations containers may not reach through the
	// gateway, added to the defaults that are always on (see EgressRule).
	// The file lists them as "[tcp:|udp:]CIDR[:PORT]"; a reload applies a
	// changed list.
	EgressDeny []EgressRule
	// FloodRate is how many broadcast and unknown unicast frames per
	// second each container may send (default 1000, 0..10000000; 0 means
	// no limit). Frames beyond it are dropped and counted as flood_limit.
	// ARP requests that proxy ARP answers on this host do not count.
	FloodRate int
	// Procs is how many threads may run the daemon's Go code at once (its
	// GOMAXPROCS). 0, the default, leaves it to the daemon: the
	// GOMAXPROCS environment variable when set, otherwise half of the
	// CPUs the process may use, at least one (see cmd/vxwire procs.go).
	// A change takes a restart.
	Procs int
	// FloodBurst is how many such frames a container may send at once
	// after a quiet spell (default 2000, 1..10000000).
	FloodBurst int
	// BehindNAT says the peers know this host by its WireGuard key only
	// (they list it without an address): gossip runs inside WireGuard on
	// the tunnel address, to every peer through its tunnel, and the host
	// has no vote on address blocks: its servers take its blocks for it
	// (internal/consensus outside.go). Every peer needs a public_key and
	// an address.
	BehindNAT bool
	// Rootless runs the daemon without privileges (see rootless.go): the
	// file's host.rootless when set; otherwise Load sets it when the
	// process lacks CAP_NET_ADMIN. In rootless mode the defaults of
	// StateDir, APISocket and UAPIDir move to the user's directories, and
	// every port the daemon binds must be at least MinUnprivilegedPort.
	Rootless bool
	// UAPIDir is the directory of the WireGuard UAPI socket NAME.sock;
	// empty means wireguard-go's /var/run/wireguard. Load sets it to
	// $XDG_RUNTIME_DIR/wireguard in rootless mode. Not a key of the file.
	UAPIDir string
	// Socks is the loopback address on which the daemon serves SOCKS5
	// (RFC 1928: no authentication, CONNECT and UDP ASSOCIATE); the zero
	// AddrPort means off. Overlay names and addresses are reached through
	// the host endpoint of their network, see README "Laptop".
	Socks netip.AddrPort
	// SocksOverlayOnly is host.socks_outside = false (the default is
	// true): SOCKS clients may then reach only the overlay, and other
	// destinations, otherwise dialled from the host, are refused with
	// reply 0x02, "connection not allowed by ruleset".
	SocksOverlayOnly bool
}

// Peer is one [[peer]] table: another host running vxwire or kernel VXLAN.
type Peer struct {
	// Name identifies the peer (required, unique).
	Name string
	// Address is the peer's underlay IPv4 address (unique, not the host's
	// own). It is required unless the peer has a public key: a peer
	// without an address (a laptop behind NAT) is reached at the endpoint
	// of its last authenticated WireGuard packet, carries only encrypted
	// networks, runs gossip inside its tunnel and has no vote on address
	// blocks. The zero value means no address; see Roaming.
	Address netip.Addr
	// GossipAddress is where the peer's gossip and replicated log listen
	// (default: Address); gossip accepts only peers' gossip addresses.
	// Unique, not the host's own. Kernel peers run neither.
	GossipAddress netip.Addr
	// Port is the peer's VXLAN UDP port (default: the host's port).
	Port uint16
	// PublicKey is the peer's WireGuard public key, decoded from base64
	// (optional, unique, not the host's own). A peer without one does not
	// carry encrypted networks.
	PublicKey [32]byte
	// HasPublicKey reports whether the file sets public_key.
	HasPublicKey bool
	// WGPort is the UDP port of the peer's encrypted path (default: the
	// host's wg_port).
	WGPort uint16
	// TunnelAddress is the peer's IPv4 address inside the encrypted path
	// (default: DeriveTunnelAddress(Address)); unique among the host and
	// its peers.
	TunnelAddress netip.Addr
	// Kernel marks a peer that runs Linux kernel VXLAN rather than vxwire
	// (default false): it has no gossip and no vote on address blocks, so
	// it does not count towards the quorum.
	Kernel bool
	// Keepalive is the WireGuard persistent keepalive towards this peer
	// (0: none). A host behind NAT sets it on its servers, "25s" as
	// wg(8) advises, so that its NAT mapping stays open.
	Keepalive time.Duration
}

// Roaming reports whether the peer has a public key and no underlay
// address: it is known by its WireGuard key alone.
func (p Peer) Roaming() bool { return p.HasPublicKey && !p.Address.IsValid() }

// AddrPort is the peer's VXLAN endpoint, the name the switch knows it by.
// A roaming peer has none on the underlay; it is known by its tunnel
// address, which only the encrypted path sends to.
func (p Peer) AddrPort() netip.AddrPort {
	if p.Roaming() {
		return netip.AddrPortFrom(p.TunnelAddress, p.Port)
	}
	return netip.AddrPortFrom(p.Address, p.Port)
}

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
	// overhead (50 bytes), or minus 110 bytes for an encrypted network,
	// which also carries the WireGuard overhead. Range 576..9000 when set.
	MTU int
	// Encrypted sends the network's traffic through WireGuard (default
	// false). It then needs host.private_key_file and at least one peer
	// with a public_key; the network spans only the peers that have one:
	// peers without a key do not carry encrypted networks.
	Encrypted bool
	// Egress lets containers of the network reach addresses outside the
	// overlay through the gateway, and lets its DNS forward names it does
	// not know to Host.DNSUpstream (default true).
	Egress bool
}

// Endpoint is one [[endpoint]] table: a container attached at start-up.
type Endpoint struct {
	// Network is the name of a configured network (required).
	Network string
	// Name is the container's name, unique within its network (required).
	Name string
	// NetNS is the path of the container's network namespace, which must
	// exist. Empty makes a host endpoint: the daemon's own userspace
	// TCP/IP stack on the network, with its own address, MAC and name,
	// reached by SOCKS5, [[forward]] and [[expose]] (see IsHost).
	NetNS string
	// IfName is the TAP device name inside the namespace (default eth0,
	// at most 15 bytes); empty for a host endpoint, which has no TAP.
	IfName string
	// Address is the container's IPv4 address inside the network's subnet,
	// not the gateway, unique in the network. The zero Addr means the
	// daemon allocates one.
	Address netip.Addr
	// MAC is the container's MAC address, unicast; nil means derived.
	MAC net.HardwareAddr
	// Aliases are extra DNS names of the container in its network: DNS
	// labels, each listed once and different from Name.
	Aliases []string
	// Handoff asks for the TAP to be made in the daemon's own namespace,
	// named IfName and left unconfigured, for a runtime (Docker) to move
	// into the container and configure; NetNS is then the daemon's own.
	// Only the API sets it, never the config file.
	Handoff bool
}

// IsHost reports whether ep is a host endpoint: one without a network
// namespace, served by the daemon's own stack.
func (ep Endpoint) IsHost() bool { return ep.NetNS == "" && !ep.Handoff }

// Forward is one [[forward]] table: a listener on the host whose
// connections (TCP) or datagrams (UDP) go to an overlay name or address
// through the host endpoint of Network.
type Forward struct {
	// Network is the network whose host endpoint dials (required; it
	// needs a host endpoint on this host).
	Network string
	// Listen is the loopback address and port to listen on (required).
	Listen netip.AddrPort
	// To is the destination as written, "NAME:PORT" or "IPV4:PORT".
	To string
	// ToHost is To's name (an endpoint name or alias of Network, or an
	// IPv4 address of its subnet) and ToPort its port.
	ToHost string
	// ToPort is To's port, 1..65535.
	ToPort uint16
	// Proto is "tcp" (default) or "udp".
	Proto string
}

// Expose is one [[expose]] table: a port of the host endpoint of Network
// whose connections (TCP) or datagrams (UDP) go to a local service.
type Expose struct {
	// Network is the network of the host endpoint (required; it needs a
	// host endpoint on this host).
	Network string
	// Port is the port on the host endpoint's overlay address (required).
	Port uint16
	// To is the local service, a loopback IPv4 address and port
	// (required).
	To netip.AddrPort
	// Proto is "tcp" (default) or "udp".
	Proto string
}
