package crypto

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/internal/safe"
)

const (
	// DefaultMTU is the inner MTU when Config.MTU is 0: WireGuard's
	// default, right for a 1480-byte underlay or less.
	DefaultMTU = device.DefaultMTU

	// MinMTU and MaxMTU bound Config.MTU.
	MinMTU = ipv4.MinDatagramLen
	MaxMTU = device.MaxContentSize

	maxNameLen = 15 // IFNAMSIZ-1, what wg(8) accepts as an interface name

	maxKeepalive = 65535 * time.Second // a 16-bit count of seconds in UAPI
)

// ErrRestartRequired is returned (wrapped, naming the field) by
// Reconfigure for a change it cannot apply to a running Device: Name, MTU
// or ListenAddr. Nothing is changed then.
var ErrRestartRequired = errors.New("change needs a new device")

// Config is the configuration of a Device. New and Reconfigure copy it;
// the caller may reuse it afterwards.
type Config struct {
	// PrivateKey is this host's WireGuard private key (required).
	PrivateKey Key
	// ListenPort is the UDP port of the tunnel (wg_port); 0 picks a free
	// one, which LocalAddr then reports.
	ListenPort uint16
	// ListenAddr, when valid, restricts the tunnel to packets sent to this
	// local address; the socket itself listens on every address of the
	// port, as wireguard-go always does. Zero means every address.
	ListenAddr netip.Addr
	// Name is the interface name `wg show` knows the device by; the UAPI
	// socket is /var/run/wireguard/NAME.sock. Empty means no socket. At
	// most 15 bytes of A-Z, a-z, 0-9, '_', '.', '-'.
	Name string
	// SocketDir, when not empty, is the directory of the UAPI socket
	// instead of /var/run/wireguard: a rootless daemon keeps it under
	// $XDG_RUNTIME_DIR, where `wg show` does not look but wgctrl-style
	// clients given the path do.
	SocketDir string
	// TunnelAddr is this host's IPv4 address inside the tunnel: the source
	// of every inner packet (required).
	TunnelAddr netip.Addr
	// MTU is the inner MTU, the largest inner IPv4 packet: the underlay
	// MTU minus TunnelOverhead (60). 0 means DefaultMTU.
	MTU int
	// Secret is the cluster secret the preshared keys derive from. It is
	// required when RotateEvery is not 0.
	Secret []byte
	// RotateEvery is the preshared-key period; 0 means no preshared key.
	RotateEvery time.Duration
	// Peers are the hosts this one talks to.
	Peers []Peer
	// InnerPort, when not 0, starts a TCP/IP stack on TunnelAddr (see
	// Device.Inner) that takes the inner packets that are not VXLAN: the
	// control plane's way to a peer without an underlay address, and the
	// way of traffic that must not cross the underlay in the clear. It is
	// the port the caller means to serve there (gossip's, the relay's).
	InnerPort uint16
	// Crash receives panics of the device's goroutines: the key
	// rotation loop and the UAPI accept loop report to Crash.Died; a
	// panic while serving one UAPI client is logged, counted under
	// RecoveredUAPI and closes only that client. wireguard-go's own
	// goroutines cannot be wrapped.
	Crash safe.Reporter

	// clockOffset is how far ahead of the real time this host's clock is
	// for key rotation: tests set it to make one host of a pair switch
	// preshared keys late (negative) or early, as a skewed clock or a
	// rotation timer delayed by load would. Fixed at New.
	clockOffset time.Duration
}

// RecoveredUAPI is the kind under which Config.Crash counts panics while
// serving one UAPI client.
const RecoveredUAPI = "wireguard uapi"

// Peer is one remote host of the tunnel.
type Peer struct {
	// PublicKey is the peer's WireGuard public key (required, unique).
	PublicKey Key
	// Endpoint is the peer's underlay IP and WireGuard port. The zero
	// value means unknown: the peer is learnt when it connects first.
	Endpoint netip.AddrPort
	// TunnelAddr is the peer's IPv4 tunnel address (required, unique):
	// its allowed-ips are TunnelAddr/32, and inner packets to it carry it
	// as destination.
	TunnelAddr netip.Addr
	// Name is the peer's host name, by which PeerAlive knows it; empty
	// when the caller never calls PeerAlive for it.
	Name string
	// ID is how the caller names this peer (required, unique): Write
	// sends to the peer whose ID is dst and Read reports the ID of the
	// sender. vxwire uses the peer's VXLAN underlay address and port,
	// or for a peer without one its tunnel address.
	ID netip.AddrPort
	// Keepalive is the persistent keepalive interval towards the peer
	// (0: none), whole seconds up to 65535; it keeps a NAT mapping open.
	Keepalive time.Duration
}

// normalized returns a validated copy of c with defaults filled in and
// addresses unmapped. It copies the Peers and the Secret.
func (c Config) normalized() (Config, error) {
	if c.PrivateKey.IsZero() {
		return c, errors.New("private key is required")
	}
	c.TunnelAddr = c.TunnelAddr.Unmap()
	if !c.TunnelAddr.Is4() || c.TunnelAddr.IsUnspecified() {
		return c, fmt.Errorf("tunnel address %v: must be an ipv4 unicast address", c.TunnelAddr)
	}
	if c.ListenAddr.IsValid() {
		c.ListenAddr = c.ListenAddr.Unmap()
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < MinMTU || c.MTU > MaxMTU {
		return c, fmt.Errorf("mtu %d: must be in %d..%d", c.MTU, MinMTU, MaxMTU)
	}
	if err := checkName(c.Name); err != nil {
		return c, err
	}
	if c.RotateEvery < 0 {
		return c, fmt.Errorf("rotate every %v: must not be negative", c.RotateEvery)
	}
	if c.RotateEvery > 0 && len(c.Secret) == 0 {
		return c, errors.New("a secret is required when preshared keys rotate")
	}
	c.Secret = append([]byte(nil), c.Secret...)
	peers, err := normalizePeers(c.Peers, c.PrivateKey.Public(), c.TunnelAddr)
	c.Peers = peers
	return c, err
}

func normalizePeers(in []Peer, self Key, selfTunnel netip.Addr) ([]Peer, error) {
	out := make([]Peer, len(in))
	keys := make(map[Key]bool, len(in))
	tunnels := make(map[netip.Addr]bool, len(in))
	ids := make(map[netip.AddrPort]bool, len(in))
	for i, p := range in {
		p.TunnelAddr = p.TunnelAddr.Unmap()
		p.ID = unmapAddrPort(p.ID)
		if p.Endpoint.IsValid() {
			p.Endpoint = unmapAddrPort(p.Endpoint)
		}
		switch {
		case p.PublicKey.IsZero():
			return nil, fmt.Errorf("peer %d: public key is required", i)
		case p.PublicKey == self:
			return nil, fmt.Errorf("peer %d: public key is this host's own", i)
		case keys[p.PublicKey]:
			return nil, fmt.Errorf("peer %d: public key %v listed twice", i, p.PublicKey)
		case !p.TunnelAddr.Is4() || p.TunnelAddr.IsUnspecified():
			return nil, fmt.Errorf("peer %d: tunnel address %v: must be an ipv4 unicast address", i, p.TunnelAddr)
		case p.TunnelAddr == selfTunnel || tunnels[p.TunnelAddr]:
			return nil, fmt.Errorf("peer %d: tunnel address %v is not unique", i, p.TunnelAddr)
		case !p.ID.IsValid():
			return nil, fmt.Errorf("peer %d: id is required", i)
		case ids[p.ID]:
			return nil, fmt.Errorf("peer %d: id %v listed twice", i, p.ID)
		case p.Keepalive < 0 || p.Keepalive > maxKeepalive || p.Keepalive%time.Second != 0:
			return nil, fmt.Errorf("peer %d: keepalive %v: must be whole seconds up to %v", i, p.Keepalive, maxKeepalive)
		}
		keys[p.PublicKey], tunnels[p.TunnelAddr], ids[p.ID] = true, true, true
		out[i] = p
	}
	return out, nil
}

func checkName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > maxNameLen || name == "." || name == ".." {
		return fmt.Errorf("name %q: must be 1 to %d characters and not a dot entry", name, maxNameLen)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-'
		if !ok {
			return fmt.Errorf("name %q: only letters, digits, underscore, dot and dash are allowed", name)
		}
	}
	return nil
}

func unmapAddrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// uapiPeer appends the UAPI "set" lines that create peer p or bring it to
// the given state: endpoint when known, allowed-ips replaced by its tunnel
// address, and the preshared key psk (the zero key is "none").
func uapiPeer(b *strings.Builder, p Peer, psk Key) {
	b.WriteString("public_key=" + p.PublicKey.hex() + "\n")
	b.WriteString("preshared_key=" + psk.hex() + "\n")
	if p.Endpoint.IsValid() {
		b.WriteString("endpoint=" + p.Endpoint.String() + "\n")
	}
	b.WriteString("persistent_keepalive_interval=" + keepaliveSecs(p.Keepalive) + "\n")
	b.WriteString("replace_allowed_ips=true\n")
	b.WriteString("allowed_ip=" + netip.PrefixFrom(p.TunnelAddr, 32).String() + "\n")
}

// keepaliveSecs is d as the UAPI's persistent_keepalive_interval.
func keepaliveSecs(d time.Duration) string {
	return strconv.Itoa(int(d / time.Second))
}

// uapiDiff appends the lines that turn peer old into peer p without
// touching its session: only what changed is set.
func uapiDiff(b *strings.Builder, old, p Peer, psk Key, setPSK bool) {
	var lines strings.Builder
	if setPSK {
		lines.WriteString("preshared_key=" + psk.hex() + "\n")
	}
	if p.Endpoint != old.Endpoint && p.Endpoint.IsValid() {
		lines.WriteString("endpoint=" + p.Endpoint.String() + "\n")
	}
	if p.Keepalive != old.Keepalive {
		lines.WriteString("persistent_keepalive_interval=" + keepaliveSecs(p.Keepalive) + "\n")
	}
	if p.TunnelAddr != old.TunnelAddr {
		lines.WriteString("replace_allowed_ips=true\n")
		lines.WriteString("allowed_ip=" + netip.PrefixFrom(p.TunnelAddr, 32).String() + "\n")
	}
	if lines.Len() > 0 {
		b.WriteString("public_key=" + p.PublicKey.hex() + "\n")
		b.WriteString(lines.String())
	}
}

// uapiRemove appends the lines that remove the peer with key k.
func uapiRemove(b *strings.Builder, k Key) {
	b.WriteString("public_key=" + k.hex() + "\nremove=true\n")
}

// uapiDevice returns the device lines of a fresh configuration.
func uapiDevice(c Config) string {
	return "private_key=" + c.PrivateKey.hex() + "\n" +
		"listen_port=" + strconv.Itoa(int(c.ListenPort)) + "\n" +
		"replace_peers=true\n"
}
