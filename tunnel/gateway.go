package tunnel

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/netstack"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// GatewayDevice is a network's gateway as the engine uses it: a port of the
// network's switch that also offers sockets on the gateway address, for
// the DNS server. netstack.Gateway implements it.
type GatewayDevice interface {
	tap.Device
	// ListenUDP listens on the gateway address.
	ListenUDP(port uint16) (net.PacketConn, error)
	// ListenTCP listens on the gateway address.
	ListenTCP(port uint16) (net.Listener, error)
	// Stats reports the gateway's counters.
	Stats() netstack.GatewayStats
	// AbortDenied ends the egress flows the deny list, just changed, now
	// refuses, and returns how many.
	AbortDenied() int
}

var _ GatewayDevice = (*netstack.Gateway)(nil)

// gatewayName is the endpoint name the gateway port reports under.
const gatewayName = "gateway"

// openGateway creates the gateway port of network n. Every host of the
// network runs its own gateway with the same address and the same MAC
// (an anycast gateway), so a container always reaches the one on its own
// host and gateway frames never cross the underlay.
func (e *Engine) openGateway(n *network) (*port, error) {
	mac := deriveMAC(n.cfg.Gateway)
	addr := netip.PrefixFrom(n.cfg.Gateway, n.cfg.Subnet.Bits())
	dev, err := e.opts.OpenGateway(netstack.GatewayConfig{
		MAC:    net.HardwareAddr(mac[:]),
		Addr:   addr,
		MTU:    n.mtu,
		Egress: n.cfg.Egress,
		Deny:   e.egress,
		Crash:  e.Reporter().With("network", n.cfg.Name),
	}, e.l.With("network", n.cfg.Name))
	if err != nil {
		return nil, fmt.Errorf("gateway of network %q: %w", n.cfg.Name, err)
	}
	p := &port{
		key:     epKey{n.cfg.Name, gatewayName},
		cfg:     config.Endpoint{Network: n.cfg.Name, Name: gatewayName},
		net:     n,
		dev:     dev,
		gw:      dev,
		mac:     mac,
		addr:    addr,
		gateway: true,
	}
	n.fdb.addStatic(mac, p)
	return p, nil
}

func defaultOpenGateway(c netstack.GatewayConfig, l *slog.Logger) (GatewayDevice, error) {
	return netstack.NewGateway(c, l)
}
