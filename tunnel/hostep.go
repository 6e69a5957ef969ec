package tunnel

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/netstack"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// A host endpoint is an [[endpoint]] without netns: the host itself on a
// network, served by a userspace TCP/IP stack in the daemon
// (netstack.NewHostEndpoint) instead of a TAP. To the switch it is an
// ordinary port: it has a MAC, an address from the config or IPAM and a
// name; its frames pass the port guard (switch_guard.go) like a
// container's, it is published to gossip, so every host's DNS and
// proxy-ARP answer for it, and frames reach it by the FDB. No part of it
// needs root. The laptop doors (laptop.go, doors.go) use its sockets.

// HostDevice is a host endpoint's stack as the engine uses it: a switch
// port that offers sockets on the endpoint's address. netstack.Gateway,
// built by netstack.NewHostEndpoint, implements it.
type HostDevice interface {
	tap.Device
	// ListenUDP listens on the endpoint's address.
	ListenUDP(port uint16) (net.PacketConn, error)
	// ListenTCP listens on the endpoint's address.
	ListenTCP(port uint16) (net.Listener, error)
	// DialContext connects from the endpoint's address to an "ipv4:port"
	// of its subnet; network is "tcp" or "udp".
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

var _ HostDevice = (*netstack.Gateway)(nil)

func defaultOpenHost(c netstack.HostEndpointConfig, l *slog.Logger) (HostDevice, error) {
	return netstack.NewHostEndpoint(c, l)
}

// openHostPort creates the stack of host endpoint ep on network n at addr.
func (e *Engine) openHostPort(ep config.Endpoint, n *network, addr netip.Addr) (*port, error) {
	p := e.unlockedNewPort(ep, n, addr)
	mac := p.mac
	dev, err := e.opts.OpenHost(netstack.HostEndpointConfig{
		MAC:   net.HardwareAddr(mac[:]),
		Addr:  p.addr,
		MTU:   n.mtu,
		Crash: e.Reporter().With("network", ep.Network, "endpoint", ep.Name),
	}, e.l.With("network", ep.Network, "endpoint", ep.Name))
	if err != nil {
		return nil, fmt.Errorf("host endpoint %q of network %q: %w", ep.Name, ep.Network, err)
	}
	p.dev, p.host = dev, dev
	n.fdb.addStatic(mac, p)
	return p, nil
}
