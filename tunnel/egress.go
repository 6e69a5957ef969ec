package tunnel

// The egress deny list every gateway of the engine shares. Egress NAT
// dials from the daemon's own namespace, where this host is trusted: by
// its own services, by the peers (which accept VXLAN from its underlay
// address) and by cloud metadata. So the list always holds, whatever
// host.egress_deny adds:
//
//	the host's own addresses, each interface's broadcast   every port
//	host.address and host.tunnel_address                    every port
//	each peer's underlay and tunnel address                  every port
//	the overlay's subnets (every network, API ones too)     every port
//	0/8, 127/8, 169.254/16, 224/4, 240/4                     built in (netstack)
//	the VXLAN and WireGuard ports of this host and every
//	peer, on ANY address                                    UDP only
//
// The last rule keeps a container from forging overlay traffic for
// anyone, not only for the configured peers: nothing legitimate inside a
// container needs to send to another overlay's VTEP through this one.
// The list is rebuilt, with the host's addresses read again, on every
// apply (start-up, reload, API changes) and whenever the addresses change
// (on the kernel's notification, and every Options.AddressCheck), and
// swapped atomically.

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/netstack"
)

// hostAddresses lists the addresses of every interface of the daemon's
// network namespace.
func hostAddresses() ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		bits, _ := ipn.Mask.Size()
		if ip = ip.Unmap(); ip.Is4() && len(ipn.Mask) == net.IPv6len {
			bits -= 96
		}
		out = append(out, netip.PrefixFrom(ip, bits))
	}
	return out, nil
}

// egressRules builds the deny list for cfg on a host whose interfaces
// hold local.
func egressRules(cfg *config.Config, local []netip.Prefix) []netstack.EgressRule {
	var rules []netstack.EgressRule
	seen := make(map[netstack.EgressRule]bool)
	add := func(r netstack.EgressRule) {
		if r.Prefix.IsValid() && r.Prefix.Addr().Is4() && !seen[r] {
			seen[r] = true
			rules = append(rules, r)
		}
	}
	host := func(a netip.Addr) {
		if a.IsValid() { // a peer without an address has none to block
			add(netstack.EgressRule{Prefix: netip.PrefixFrom(a, 32)})
		}
	}
	udpPort := func(port uint16) {
		add(netstack.EgressRule{Prefix: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Port: port, Proto: netstack.ProtoUDP})
	}
	for _, p := range local {
		if !p.Addr().Is4() {
			continue
		}
		host(p.Addr())
		if p.Bits() < 31 {
			host(ipv4.Broadcast(p))
		}
	}
	h := cfg.Host
	host(h.Address)
	host(h.GossipAddress)
	host(h.TunnelAddress)
	udpPort(h.Port)
	udpPort(h.WGPort)
	for _, p := range cfg.Peers {
		host(p.Address)
		host(p.GossipAddress)
		host(p.TunnelAddress)
		udpPort(p.Port)
		udpPort(p.WGPort)
	}
	for _, n := range cfg.Networks {
		add(netstack.EgressRule{Prefix: n.Subnet})
	}
	for _, r := range h.EgressDeny {
		nr := netstack.EgressRule{Prefix: r.Prefix, Port: r.Port}
		switch r.Proto {
		case "tcp":
			nr.Proto = netstack.ProtoTCP
		case "udp":
			nr.Proto = netstack.ProtoUDP
		}
		add(nr)
	}
	return rules
}

// defaultAddressCheck is how often the host's addresses are read again.
const defaultAddressCheck = 5 * time.Second

// readEgressRules builds the deny list for cfg, reading the host's addresses
// again. If they cannot be read, cfg must not be applied: a list without
// them would let containers reach the host.
func (e *Engine) readEgressRules(cfg *config.Config) (egressList, error) {
	local, err := e.opts.HostAddresses()
	if err != nil {
		return egressList{}, fmt.Errorf("cannot list the host's addresses for the egress deny list: %w", err)
	}
	return egressList{local, egressRules(cfg, local)}, nil
}

// egressList is a deny list with the host addresses it was built from.
type egressList struct {
	local []netip.Prefix
	rules []netstack.EgressRule
}

// routineHostAddresses reads the host's addresses every AddressCheck, and
// at once when the kernel says they changed, and rebuilds the deny list
// when they did. Until it has, an address the host just gained would be
// reachable from containers.
func (e *Engine) routineHostAddresses() {
	t := time.NewTicker(e.opts.AddressCheck)
	defer t.Stop()
	var changed chan struct{}
	if w, err := newAddrWatch(); err != nil {
		e.l.Debug("no address notifications; reading the host's addresses on a timer only", "error", err)
	} else {
		changed = w.C
		defer w.Close() // ends w.run
		e.goSafe("host address notifications", w.run)
	}
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
		case <-changed:
		}
		local, err := e.opts.HostAddresses()
		if err != nil {
			e.l.Warn("cannot list the host's addresses for the egress deny list", "error", err)
			continue
		}
		e.mu.Lock()
		if !e.stopped && e.cfg != nil && !slices.Equal(local, e.hostAddrs) {
			e.l.Info("host addresses changed; updating the egress deny list", "addresses", len(local))
			e.unlockedSetEgress(egressList{local, egressRules(e.cfg, local)})
		}
		e.mu.Unlock()
	}
}

// unlockedSetEgress installs a new deny list, once the rest of a config
// has been applied, and ends the open egress flows it now refuses.
func (e *Engine) unlockedSetEgress(l egressList) {
	e.hostAddrs = l.local
	if err := e.egress.Set(l.rules); err != nil {
		// egressRules emits IPv4 prefixes only; keep the old list.
		e.l.Error("cannot install the egress deny list", "error", err)
		return
	}
	for _, n := range e.networks {
		if k := n.gw.gw.AbortDenied(); k > 0 {
			e.l.Info("closed egress flows the new deny list refuses", "network", n.cfg.Name, "flows", k)
		}
	}
}

// gatewayStatus converts a gateway's counters into their API form.
func gatewayStatus(s netstack.GatewayStats) *api.GatewayStatus {
	drops := map[string]uint64{}
	for reason, n := range map[string]uint64{
		api.DropGatewayFiltered: s.DropsFiltered,
		api.DropGatewayIPv6:     s.DropsIPv6,
		api.DropGatewayQueue:    s.DropsQueueFull,
		api.DropGatewayOversize: s.DropsOversize,
		api.DropMalformedFrame:  s.DropsMalformed,
		api.DropEgressDenied:    s.DropsEgressDenied,
		api.DropSourceFlowLimit: s.DropsSourceLimit,
		api.DropFlowLimit:       s.DropsFlowLimit,
		api.DropUDPTooLarge:     s.DropsUDPTooLarge,
	} {
		if n > 0 {
			drops[reason] = n
		}
	}
	if len(drops) == 0 {
		drops = nil
	}
	return &api.GatewayStatus{
		Counters:        api.Counters{RxFrames: s.FramesIn, TxFrames: s.FramesOut, Drops: drops},
		EgressTCPOpen:   s.TCPFlowsOpen,
		EgressTCPTotal:  s.TCPFlowsTotal,
		EgressUDPOpen:   s.UDPFlowsOpen,
		EgressUDPTotal:  s.UDPFlowsTotal,
		DialErrors:      s.DialErrors,
		EgressICMPOpen:  s.EchoFlowsOpen,
		EgressICMPTotal: s.EchoFlowsTotal,
	}
}
