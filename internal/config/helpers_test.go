package config

import (
	"net/netip"
	"slices"
)

// Lookups only the tests use.

// NetworkByVNI returns the network that uses vni. The pointer refers into
// c, which must not be modified.
func (c *Config) NetworkByVNI(vni uint32) (*Network, bool) {
	i := slices.IndexFunc(c.Networks, func(n Network) bool { return n.VNI == vni })
	if i < 0 {
		return nil, false
	}
	return &c.Networks[i], true
}

// NetworkEndpoints returns the endpoints attached to the network called
// name, in file order. The result is a new slice; its MACs are shared with
// c and must not be modified.
func (c *Config) NetworkEndpoints(name string) []Endpoint {
	var out []Endpoint
	for _, ep := range c.Endpoints {
		if ep.Network == name {
			out = append(out, ep)
		}
	}
	return out
}

// WGAddrPort is the peer's WireGuard endpoint.
func (p Peer) WGAddrPort() netip.AddrPort { return netip.AddrPortFrom(p.Address, p.WGPort) }
