package config

import (
	"fmt"
	"net/netip"
)

// The rules of a network and an endpoint defined outside the file, by the
// API or the CLI, and the rule that keeps networks apart. They sit beside rules.go
// and use its checks; the file's validator reports the same rules field
// by field with FILE:LINE (validate.go).

// FieldError is a refusal of one field of a definition that a door other
// than the config file built (the API, the CLI). Field is the key's name
// in the config file ("subnet", "vni"), so that each door can say it its
// own way (the CLI names its flag).
type FieldError struct {
	// Field is the config-file key of the refused field.
	Field string
	// Err says why.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the rule's error.
func (e *FieldError) Unwrap() error { return e.Err }

// NewNetwork builds a network from the fields as the API and the CLI
// spell them, fills in the defaults and checks it with the rules of
// CheckNetwork. vni 0 leaves the VNI to the caller (the daemon picks a
// free one); gateway "" is the subnet's first host address; mtu 0 is the
// underlay MTU minus the overhead. An error is a *FieldError.
func NewNetwork(name string, vni uint32, subnet, gateway string, mtu int, encrypted, egress bool) (Network, error) {
	n := Network{Name: name, VNI: vni, MTU: mtu, Encrypted: encrypted, Egress: egress}
	if err := CheckLabel(name); err != nil {
		return n, &FieldError{"name", err}
	}
	if vni != 0 {
		if err := CheckVNI(int64(vni)); err != nil {
			return n, &FieldError{"vni", err}
		}
	}
	var err error
	if n.Subnet, err = ParseSubnet(subnet); err != nil {
		return n, &FieldError{"subnet", err}
	}
	n.Gateway = n.Subnet.Addr().Next()
	if gateway != "" {
		gw, err := netip.ParseAddr(gateway)
		if err != nil {
			return n, &FieldError{"gateway", fmt.Errorf("%q is not an IPv4 address", gateway)}
		}
		if err := CheckGateway(gw, n.Subnet); err != nil {
			return n, &FieldError{"gateway", err}
		}
		n.Gateway = gw
	}
	if err := CheckNetworkMTU(int64(mtu), encrypted); err != nil {
		return n, &FieldError{"mtu", err}
	}
	return n, nil
}

// NetworkClash reports why network n cannot be carried beside o: networks
// are unique by name, VNI and subnet across the cluster. A VNI of 0 in n
// (not chosen yet) clashes with none. The message names o; callers add
// where o comes from (the file, the log, another host).
func NetworkClash(n, o *Network) error {
	switch {
	case o.Name == n.Name:
		return fmt.Errorf("network %q exists", n.Name)
	case n.VNI != 0 && o.VNI == n.VNI:
		return fmt.Errorf("vni %d is used by network %q", n.VNI, o.Name)
	case o.Subnet.Overlaps(n.Subnet):
		return fmt.Errorf("subnet %s overlaps %s of network %q", n.Subnet, o.Subnet, o.Name)
	}
	return nil
}

// NewEndpoint builds a container endpoint of network from the fields as
// the API and the CLI spell them and checks each: name and aliases DNS
// labels, ifname an interface name (DefaultIfName when ""), address an
// IPv4 address ("" lets the daemon allocate one) and mac a unicast MAC
// ("" lets the daemon derive one). Whether the address fits the network
// is CheckEndpointAddr's, once the network is known; the namespace is
// the caller's. An error is a *FieldError.
func NewEndpoint(network, name string, aliases []string, ifname, address, mac string) (Endpoint, error) {
	ep := Endpoint{Network: network, Name: name, IfName: ifname, Aliases: aliases}
	if err := CheckLabel(name); err != nil {
		return ep, &FieldError{"name", err}
	}
	if err := CheckAliases(name, aliases); err != nil {
		return ep, &FieldError{"aliases", err}
	}
	if ep.IfName == "" {
		ep.IfName = DefaultIfName
	}
	if err := CheckIfName(ep.IfName); err != nil {
		return ep, &FieldError{"ifname", err}
	}
	if address != "" {
		a, err := netip.ParseAddr(address)
		if err != nil || !a.Is4() {
			return ep, &FieldError{"address", fmt.Errorf("%q is not an IPv4 address without a prefix length, such as 10.0.0.5", address)}
		}
		ep.Address = a
	}
	if mac != "" {
		hw, err := ParseMAC(mac)
		if err != nil {
			return ep, &FieldError{"mac", err}
		}
		ep.MAC = hw
	}
	return ep, nil
}
