package tunnel

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/overhead"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// epKey identifies an endpoint: its network and name.
type epKey struct{ network, name string }

// port is a local endpoint: a container's TAP device attached to a network.
type port struct {
	key    epKey
	cfg    config.Endpoint // as configured (Address may be zero)
	net    *network
	dev    tap.Device
	mac    MAC
	addr   netip.Prefix // address actually assigned
	ip4    [4]byte      // addr's address, for the IPv4 and ARP checks
	closed atomic.Bool
	stats  counters

	started bool // guarded by Engine.mu

	// ns is the identity of the port's namespace, seq its attach order,
	// and defaultRoute whether its TAP holds the namespace's default
	// route (see multinet.go). Set by openPort, then read-only.
	ns           nsID
	seq          uint64
	defaultRoute bool

	// gateway marks the network's gateway port: its frames stay on this
	// host, and gw offers its sockets.
	gateway bool
	gw      GatewayDevice

	// host is set on a host endpoint's port (hostep.go): its stack's
	// sockets. Such a port has no namespace and no TAP.
	host HostDevice

	// sc and flood belong to the port's read goroutine; only it touches
	// them.
	sc    scratch
	flood floodBucket
	// vipt is the port's VIP flow table (switch_vip.go), made by its
	// reader on the first VIP flow; read by the goroutines that deliver
	// replies to it.
	vipt atomic.Pointer[vipTable]
}

// deriveMAC gives an endpoint without a configured MAC a stable, locally
// administered unicast one from its address: 02:76:a.b.c.d. Addresses are
// unique within a network, so the MACs are too.
func deriveMAC(a netip.Addr) MAC {
	b := a.As4()
	return MAC{0x02, 0x76, b[0], b[1], b[2], b[3]}
}

// endpointMAC is the MAC endpoint ep gets at address addr: the configured
// one, else the one derived from addr.
func endpointMAC(ep config.Endpoint, addr netip.Addr) MAC {
	if len(ep.MAC) == 6 {
		return MAC(ep.MAC)
	}
	return deriveMAC(addr)
}

// unlockedNewPort returns the port of endpoint ep on network n at addr,
// with its MAC, flood bucket and attach order, before its device is
// opened: what a container's port and a host endpoint's have alike.
func (e *Engine) unlockedNewPort(ep config.Endpoint, n *network, addr netip.Addr) *port {
	p := &port{
		key:  epKey{ep.Network, ep.Name},
		cfg:  ep,
		net:  n,
		mac:  endpointMAC(ep, addr),
		addr: netip.PrefixFrom(addr, n.cfg.Subnet.Bits()),
		ip4:  addr.As4(),
	}
	p.flood = newFloodBucket(e.file.Host.FloodRate, e.file.Host.FloodBurst)
	e.portSeq++
	p.seq = e.portSeq
	return p
}

// openPort creates the TAP device of ep in its namespace.
func (e *Engine) openPort(ep config.Endpoint, n *network, addr netip.Addr) (*port, error) {
	if ep.IsHost() {
		return e.openHostPort(ep, n, addr)
	}
	p := e.unlockedNewPort(ep, n, addr)
	mac := p.mac
	ifname := ep.IfName
	if ifname == "" {
		ifname = config.DefaultIfName
	}
	if !ep.Handoff { // the runtime that takes the TAP configures it
		p.ns = netnsID(ep.NetNS)
		p.defaultRoute = e.unlockedOwnsDefaultRoute(p.ns)
	}
	reopen, rec := e.unlockedTakeKept(p, ep, ifname)
	if rec != nil {
		// A reopened TAP keeps the routes it had, whatever this
		// attach order would give it.
		p.defaultRoute = rec.DefaultRoute
	}
	var gw netip.Addr
	if p.defaultRoute {
		gw = n.cfg.Gateway
	}
	netns := ep.NetNS
	if rec != nil && rec.Moved {
		// A handoff TAP its runtime moved into a container: reopen it
		// there, under the name it has now.
		netns, ifname = rec.path(), rec.IfName
		if netns == "" {
			return nil, fmt.Errorf("endpoint %q of network %q: no process is left in the namespace its interface was moved to", ep.Name, ep.Network)
		}
	}
	open, passed := e.opts.OpenPort, false
	if f := e.passedTAP(ep); f != nil {
		open, passed = e.adoptPassed(f), true
		reopen, rec = nil, nil // a fresh TAP took the name
	} else if rec != nil && rec.Passed {
		open, passed = e.reopenPassed(ep), true
	}
	tcfg := tap.Config{
		NetNS:   netns,
		Name:    ifname,
		MAC:     net.HardwareAddr(mac[:]),
		Addr:    p.addr,
		Gateway: gw,
		MTU:     n.mtu,
		Handoff: ep.Handoff,
		Reopen:  reopen,
		// One superframe from the container, one UDP GSO send.
		GSOMaxSegs: encap.FramesPerSend(n.mtu),
	}
	l := e.l.With("network", ep.Network, "endpoint", ep.Name)
	dev, err := open(tcfg, l)
	if err != nil && reopen != nil && passed && refusedKept(err) {
		// Never adopted; the TAP stays where it is, and the
		// endpoint is reported failed with why.
		e.l.Warn("kept tap refused", "error", err, "network", ep.Network, "endpoint", ep.Name, "netns", ep.NetNS)
		e.refused.Add(refusedKeptTAP)
		e.removeTAPRecord(p.key)
	} else if err != nil && reopen != nil && reopenError(err) {
		// The path names another namespace now. An API endpoint
		// belongs to the namespace it was attached in (see
		// loadRuntimeState); a config endpoint follows its path.
		if _, dyn := e.dynEps[p.key]; !dyn {
			tcfg.Reopen = nil
			dev, err = open(tcfg, l)
		}
		e.removeTAPRecord(p.key)
	}
	if err != nil {
		err = privilegeHint(err, ep.NetNS, e.file.Host.Rootless)
		return nil, fmt.Errorf("endpoint %q of network %q: %w", ep.Name, ep.Network, err)
	}
	if reopen != nil && tcfg.Reopen != nil {
		e.l.Info("endpoint's interface reopened", "network", ep.Network, "endpoint", ep.Name, "netns", ep.NetNS)
	}
	p.dev = dev
	switch {
	case rec != nil && rec.Moved:
		// Its record stays as it is.
	case ep.Handoff:
		e.saveTAPRecord(p, false)
		self := netnsID(selfNetNS)
		e.goSafe("follow handoff "+p.key.network+"/"+p.key.name, func() { e.routineFollowHandoff(p, self) })
	default:
		e.saveTAPRecord(p, passed)
	}
	if err := e.unlockedWriteResolvConf(p); err != nil {
		e.l.Warn("cannot write resolv.conf", "error", err, "network", ep.Network, "endpoint", ep.Name)
	}
	n.fdb.addStatic(mac, p)
	return p, nil
}

// unlockedClosePort detaches p: the data path stops using it at once (its
// FDB entries read as dead) and its TAP device is removed with its record
// (see persist.go; a stopping daemon keeps them with unlockedKeepPort).
func (e *Engine) unlockedClosePort(p *port) {
	if p.closed.Swap(true) {
		return
	}
	if p.gateway && p.net.dns != nil {
		p.net.dns.Close()
	}
	if !p.gateway && p.host == nil {
		e.unlockedDetachResolvConf(p)
	}
	p.net.fdb.removePort(p)
	if err := p.dev.Close(); err != nil {
		e.l.Warn("cannot remove tap", "error", err, "network", p.key.network, "endpoint", p.key.name)
	}
	if !p.gateway {
		e.removeTAPRecord(p.key)
	}
}

// underlayMTU returns the MTU containers' frames must fit after VXLAN.
func (e *Engine) underlayMTU(cfg *config.Config) int {
	if cfg.Host.MTU > 0 {
		return cfg.Host.MTU
	}
	mtu, err := e.opts.UnderlayMTU(cfg.Host.Address)
	if err != nil {
		e.l.Warn("cannot detect underlay mtu, assuming 1500", "error", err)
		return 1500
	}
	return mtu
}

// networkMTU is the container MTU of n on an underlay of mtu.
func networkMTU(n config.Network, underlay int) int {
	switch {
	case n.MTU > 0:
		return n.MTU
	}
	return underlay - overhead.Of(n.Encrypted)
}

// interfaceMTU finds the interface that holds addr and returns its MTU.
func interfaceMTU(addr netip.Addr) (int, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0, err
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap() == addr {
					return ifc.MTU, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no interface has address %s", addr)
}
