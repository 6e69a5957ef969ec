package tunneltest

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/vxwire/vxwire/netstack"
	"github.com/vxwire/vxwire/tunnel/tap/taptest"
)

// Gateway is a fake of a network's gateway (netstack.Gateway): a switch
// port whose frames the test sees and injects, as with a
// taptest.ChannelDevice, plus sockets "on the gateway address" that are
// loopback sockets of the test process, so a test reaches a server the
// engine runs on the gateway (its DNS) at UDPAddr or TCPAddr. Frames the
// switch writes to the gateway are what the gateway received: take them
// from Written. All methods but Wait and Read are safe for concurrent use.
type Gateway struct {
	*taptest.ChannelDevice

	// Config is what the engine asked for. The fake takes the MTU from
	// it; the address, MAC and egress flag are for the test to check.
	Config netstack.GatewayConfig

	mu      sync.Mutex
	udp     map[uint16]netip.AddrPort
	tcp     map[uint16]netip.AddrPort
	closers []io.Closer
}

// NewGateway returns a gateway port configured by cfg, with the given
// batch size, whose channels buffer up to depth frames in each direction.
func NewGateway(cfg netstack.GatewayConfig, batch, depth int) *Gateway {
	return &Gateway{
		ChannelDevice: taptest.NewChannelDevice(cfg.MTU, batch, depth),
		Config:        cfg,
		udp:           make(map[uint16]netip.AddrPort),
		tcp:           make(map[uint16]netip.AddrPort),
	}
}

// ListenUDP listens on a free loopback port standing for port on the
// gateway address.
func (g *Gateway) ListenUDP(port uint16) (net.PacketConn, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake gateway udp %d: %w", port, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.udp[port] = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	g.closers = append(g.closers, pc)
	return pc, nil
}

// ListenTCP listens on a free loopback port standing for port on the
// gateway address.
func (g *Gateway) ListenTCP(port uint16) (net.Listener, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake gateway tcp %d: %w", port, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tcp[port] = ln.Addr().(*net.TCPAddr).AddrPort()
	g.closers = append(g.closers, ln)
	return ln, nil
}

// UDPAddr returns the loopback address standing for the gateway's UDP
// port, and false if nothing listened on it.
func (g *Gateway) UDPAddr(port uint16) (netip.AddrPort, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.udp[port]
	return a, ok
}

// TCPAddr is UDPAddr for TCP.
func (g *Gateway) TCPAddr(port uint16) (netip.AddrPort, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	a, ok := g.tcp[port]
	return a, ok
}

// Close closes the port and every socket it handed out. It is safe to
// call more than once.
func (g *Gateway) Close() error {
	g.mu.Lock()
	cs := g.closers
	g.closers = nil
	g.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	return g.ChannelDevice.Close()
}

// Stats reports the frames that crossed the fake: what the switch wrote
// to it as FramesIn and what the test injected as FramesOut. The fake has
// no egress, so every egress counter stays zero.
func (g *Gateway) Stats() netstack.GatewayStats {
	st := g.ChannelDevice.Stats()
	return netstack.GatewayStats{FramesIn: st.TxFrames, FramesOut: st.RxFrames}
}

// AbortDenied ends no flow: the fake carries no egress.
func (g *Gateway) AbortDenied() int { return 0 }
