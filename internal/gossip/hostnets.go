package gossip

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/vxwire/vxwire/internal/config"
)

// HostNetwork is a network of one host's config file, as that host
// announces it: enough for another host to refuse an API network whose
// VNI or subnet clashes with it.
type HostNetwork struct {
	// Host is the host whose config file defines the network.
	Host string
	// Name, VNI and Subnet are the network's.
	Name   string
	VNI    uint32
	Subnet netip.Prefix
}

func compareHostNetworks(a, b HostNetwork) int {
	return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Name, b.Name))
}

// checkHostNetwork checks an announced network with the config rules.
func checkHostNetwork(n *HostNetwork) error {
	if err := config.CheckLabel(n.Name); err != nil {
		return err
	}
	if err := config.CheckVNI(int64(n.VNI)); err != nil {
		return err
	}
	return config.CheckSubnet(n.Subnet)
}

// SetLocalNetworks replaces the config-file networks this host announces
// with nets. Host is set to the local NodeName; invalid entries are
// dropped and logged.
func (c *Cluster) SetLocalNetworks(nets []HostNetwork) {
	norm := make([]HostNetwork, 0, len(nets))
	for _, n := range nets {
		n.Host = c.cfg.NodeName
		if err := checkHostNetwork(&n); err != nil {
			c.l.Warn("network not announced", "network", n.Name, "error", err)
			continue
		}
		norm = append(norm, n)
	}
	slices.SortFunc(norm, compareHostNetworks)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || slices.Equal(c.local.Networks, norm) {
		return
	}
	c.local.Networks = norm
	c.unlockedPublish()
}

// HostNetworks returns the config-file networks every known host
// announces, this host's included, sorted by host and name. Hosts that
// failed or left are included with what they last announced: their
// config files still hold those networks when they come back, so an API
// network must not take their VNIs or subnets meanwhile. The result is a
// copy owned by the caller.
func (c *Cluster) HostNetworks() []HostNetwork {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []HostNetwork
	for _, e := range c.tab.hosts {
		out = append(out, e.state.Networks...)
	}
	slices.SortFunc(out, compareHostNetworks)
	return out
}
