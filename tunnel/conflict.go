package tunnel

import (
	"fmt"
	"net/netip"
)

// InUseError reports that an endpoint asks for a MAC or an address that
// the network's gateway or another endpoint of the network (on this host
// or, from its gossip record, on another) already has. Two ports with one
// MAC would take each other's frames, and the switch's anti-spoofing
// trusts each port's MAC and address to be its own.
type InUseError struct {
	// Network names the network, What is "mac" or "address", Value the
	// MAC or address asked for.
	Network, What, Value string
	// Endpoint and Host name the holder; Endpoint is "gateway" for the
	// network's gateway.
	Endpoint, Host string
}

// Error implements error.
func (e *InUseError) Error() string {
	if e.Endpoint == gatewayName {
		return fmt.Sprintf("%s %s is the gateway's of network %s", e.What, e.Value, e.Network)
	}
	return fmt.Sprintf("%s %s is already used by endpoint %q on host %s in network %s",
		e.What, e.Value, e.Endpoint, e.Host, e.Network)
}

// Holder names the endpoint and host that hold the MAC or address, which
// makes the API answer with a conflict (see attachError).
func (e *InUseError) Holder() (endpoint, host string) { return e.Endpoint, e.Host }

// unlockedCheckInUse checks the MAC and address an endpoint named name of
// network n is about to get against the network's gateway, its other
// ports on this host and the records of other hosts.
func (e *Engine) unlockedCheckInUse(n *network, name string, mac MAC, addr netip.Addr) error {
	self := e.file.Host.Name
	inUse := func(what, value, holder, host string) error {
		return &InUseError{Network: n.cfg.Name, What: what, Value: value, Endpoint: holder, Host: host}
	}
	if addr == n.cfg.Gateway {
		return inUse("address", addr.String(), gatewayName, self)
	}
	if mac == deriveMAC(n.cfg.Gateway) {
		return inUse("mac", mac.String(), gatewayName, self)
	}
	for k, p := range e.ports {
		if k.network != n.cfg.Name || k.name == name {
			continue
		}
		if p.mac == mac {
			return inUse("mac", mac.String(), k.name, self)
		}
		if p.addr.Addr() == addr {
			return inUse("address", addr.String(), k.name, self)
		}
	}
	if e.cluster == nil {
		return nil
	}
	for _, rec := range e.cluster.Records() {
		if rec.Network != n.cfg.Name || rec.Host == self {
			continue
		}
		if MAC(rec.MAC) == mac {
			return inUse("mac", mac.String(), rec.Name, rec.Host)
		}
		if rec.IP == addr {
			return inUse("address", addr.String(), rec.Name, rec.Host)
		}
	}
	return nil
}
