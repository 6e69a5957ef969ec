package netstack

import (
	"log/slog"
	"net"
	"net/netip"

	"github.com/vxwire/vxwire/internal/safe"
)

// HostEndpointConfig configures a host endpoint: the daemon's host itself
// as an endpoint of a network, with an address, a MAC and a name of its
// own like a container.
type HostEndpointConfig struct {
	// MAC is the endpoint's unicast Ethernet address.
	MAC net.HardwareAddr
	// Addr is the endpoint's address with the network's prefix length.
	Addr netip.Prefix
	// MTU is the network's IP MTU.
	MTU int
	// Crash receives panics of per-flow goroutines.
	Crash safe.Reporter
}

// NewHostEndpoint builds the stack of a host endpoint. It is the
// gateway's stack and link, owning the endpoint's address instead of the
// gateway's, without egress: the frame filter passes only frames for its
// own MAC and address (and broadcast ARP for it), it routes only to the
// subnet, and its TCP receive buffers grow up to HostTCPReceiveBuffer
// (the doors relay bulk downloads through them). The daemon reaches the overlay from it with DialContext
// (SOCKS5, forwards) and serves on it with ListenTCP and ListenUDP
// (exposes). The switch attaches it as an ordinary, untrusted port: its
// frames pass the same anti-spoofing checks as a container's.
func NewHostEndpoint(cfg HostEndpointConfig, l *slog.Logger) (*Gateway, error) {
	return NewGateway(GatewayConfig{
		MAC: cfg.MAC, Addr: cfg.Addr, MTU: cfg.MTU, Crash: cfg.Crash,
		TCPReceiveMax: HostTCPReceiveBuffer,
	}, l)
}
