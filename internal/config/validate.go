package config

import (
	"fmt"
	"net/netip"
)

// validate runs the checks that span several fields: uniqueness, overlap
// and membership. The later of two clashing entries is the one reported.
func (v *validator) validate() {
	v.hostPorts()
	v.peers()
	v.tunnelAddresses()
	v.networks()
	v.endpoints()
	v.publishes()
	v.services()
	v.laptopRules()
	v.behindNAT()
}

// behindNAT checks a host behind NAT: it reaches every peer through
// WireGuard, so it needs its key and every peer's, and their addresses.
func (v *validator) behindNAT() {
	if !v.c.Host.BehindNAT {
		return
	}
	if !v.spelled("host.private_key_file") {
		v.errorf("host.behind_nat", "a host behind NAT reaches its peers through WireGuard: set host.private_key_file")
	}
	for i, p := range v.c.Peers {
		field := indexPath("peer", i)
		if !p.HasPublicKey && !v.spelled(field+".public_key") {
			v.errorf(field+".name", "the host is behind NAT and reaches its peers through WireGuard: peer %s needs a public_key", p.Name)
		}
		if p.Roaming() {
			v.errorf(field+".public_key", "the host is behind NAT: peer %s needs an address", p.Name)
		}
	}
}

// spelled reports whether the file sets field, even to a value that failed
// its check. Cross-field checks use it to tell a missing key from a wrong
// one, which is reported already.
func (v *validator) spelled(field string) bool {
	_, ok := v.c.lines[field]
	return ok
}

// hostPorts checks that the ports bound on this host are distinct: the
// VXLAN and gossip ports, and the WireGuard port when the host has a
// private key (without one it runs no WireGuard).
func (v *validator) hostPorts() {
	h := v.c.Host
	wg := v.spelled("host.private_key_file")
	if wg && h.WGPort == h.Port {
		v.errorf("host.wg_port", "port %d is also host.port (VXLAN); the encrypted path needs a port of its own", h.WGPort)
	}
	switch {
	case h.RaftPort == h.GossipPort:
		v.errorf("host.raft_port", "port %d is also host.gossip_port (TCP); the address-block log needs a port of its own", h.RaftPort)
	}
	switch {
	case h.GossipPort == h.Port:
		v.errorf("host.gossip_port", "port %d is also host.port (VXLAN); gossip needs a port of its own", h.GossipPort)
	case wg && h.GossipPort == h.WGPort:
		v.errorf("host.gossip_port", "port %d is also host.wg_port (WireGuard); gossip needs a port of its own", h.GossipPort)
	}
}

func (v *validator) peers() {
	h := v.c.Host
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	gossips := map[netip.Addr]int{}
	keys := map[[32]byte]int{}
	for i, p := range v.c.Peers {
		field := indexPath("peer", i)
		if p.HasPublicKey {
			if j, dup := keys[p.PublicKey]; dup {
				v.errorf(field+".public_key", "%s is already the public key of peer[%d]", encodeKey(p.PublicKey), j)
			} else {
				keys[p.PublicKey] = i
			}
		}
		if p.HasPublicKey && p.WGPort == p.Port {
			v.errorf(field+".wg_port", "port %d is also %s.port (VXLAN); the encrypted path needs a port of its own", p.WGPort, field)
		}
		if p.Name != "" {
			if j, dup := names[p.Name]; dup {
				v.errorf(field+".name", "name %q is already used by peer[%d]", p.Name, j)
			} else if p.Name == h.Name {
				v.errorf(field+".name", "name %q is the host's own name", p.Name)
			} else {
				names[p.Name] = i
			}
		}
		v.roaming(field, p)
		addrBad := false
		if p.Address.IsValid() {
			if j, dup := addrs[p.Address]; dup {
				v.errorf(field+".address", "%s is already used by peer[%d]", p.Address, j)
				addrBad = true
			} else if p.Address == h.Address {
				v.errorf(field+".address", "%s is the host's own address", p.Address)
				addrBad = true
			} else {
				addrs[p.Address] = i
			}
		}
		// A gossip address taken from a bad address is reported once,
		// as the address.
		if p.GossipAddress.IsValid() && !(addrBad && p.GossipAddress == p.Address) {
			if j, dup := gossips[p.GossipAddress]; dup {
				v.errorf(field+".gossip_address", "%s is already the gossip address of peer[%d]", p.GossipAddress, j)
			} else if p.GossipAddress == h.GossipAddress || p.GossipAddress == h.Address {
				v.errorf(field+".gossip_address", "%s is one of the host's own addresses", p.GossipAddress)
			} else {
				gossips[p.GossipAddress] = i
			}
		}
	}
}

// roamers returns the peers that leave their address out (not those
// whose address is wrong, which is reported already).
func (v *validator) roamers() []Peer {
	var out []Peer
	for i, p := range v.c.Peers {
		if p.Roaming() && !v.spelled(indexPath("peer", i)+".address") {
			out = append(out, p)
		}
	}
	return out
}

// roaming checks a peer without an address: its tunnel address cannot be
// derived, and it runs neither gossip on the underlay nor kernel VXLAN.
func (v *validator) roaming(field string, p Peer) {
	if !p.Roaming() {
		return
	}
	if !v.spelled(field + ".tunnel_address") {
		v.errorf(field+".public_key", "a peer without an address needs tunnel_address: there is no address to derive it from")
	}
	if v.spelled(field + ".gossip_address") {
		v.errorf(field+".gossip_address", "a peer without an address gossips inside its WireGuard tunnel; leave gossip_address out")
	}
	if p.Kernel {
		v.errorf(field+".kernel", "a kernel VXLAN peer needs an address")
	}
}

// tunnelOwner is a host or peer holding a tunnel address, for messages.
type tunnelOwner struct {
	who      string     // "host h1", "peer[0] h2"
	field    string     // "host", "peer[0]"
	derived  bool       // the address is derived, not set in the file
	underlay netip.Addr // the address it is derived from
}

func (o tunnelOwner) String() string {
	if o.derived {
		return fmt.Sprintf("%s (derived from address %s)", o.who, o.underlay)
	}
	return o.who
}

// tunnelAddresses checks that the host and its peers have distinct tunnel
// addresses, explicit or derived.
func (v *validator) tunnelAddresses() {
	seen := map[netip.Addr]tunnelOwner{}
	add := func(field, who string, a, underlay netip.Addr) {
		if !a.IsValid() {
			return
		}
		o := tunnelOwner{who: who, field: field, derived: !v.spelled(field + ".tunnel_address"), underlay: underlay}
		prev, dup := seen[a]
		if !dup {
			seen[a] = o
			return
		}
		if o.derived && prev.derived && o.underlay == prev.underlay {
			// A duplicate underlay address, reported on its own.
			return
		}
		what := a.String()
		if o.derived {
			what = fmt.Sprintf("%s (derived from address %s)", a, underlay)
		}
		hint := ""
		if o.derived || prev.derived {
			hint = "; set tunnel_address on one of them"
		}
		v.errorf(field+".tunnel_address", "%s is already the tunnel address of %s%s", what, prev, hint)
	}
	h := v.c.Host
	add("host", named("host", h.Name), h.TunnelAddress, h.Address)
	for i, p := range v.c.Peers {
		field := indexPath("peer", i)
		add(field, named(field, p.Name), p.TunnelAddress, p.Address)
	}
}

// named appends name to what, when there is a name.
func named(what, name string) string {
	if name == "" {
		return what
	}
	return what + " " + name
}

func (v *validator) networks() {
	names := map[string]int{}
	vnis := map[uint32]int{}
	encrypted := false
	for i, n := range v.c.Networks {
		field := indexPath("network", i)
		if n.Encrypted && !encrypted {
			// The first encrypted network reports what encryption lacks.
			encrypted = true
			v.encryption(field + ".encrypted")
		}
		if err := CheckPlainPeers(n.Encrypted, v.c.Host.BehindNAT, v.roamers()); err != nil {
			v.errorf(field, "%v", err)
		}
		if n.Name != "" {
			if j, dup := names[n.Name]; dup {
				v.errorf(field+".name", "name %q is already used by network[%d]", n.Name, j)
			} else {
				names[n.Name] = i
			}
		}
		if n.VNI != 0 {
			if j, dup := vnis[n.VNI]; dup {
				v.errorf(field+".vni", "vni %d is already used by network[%d]", n.VNI, j)
			} else {
				vnis[n.VNI] = i
			}
		}
		if !n.Subnet.IsValid() {
			continue
		}
		for j := range i {
			if o := v.c.Networks[j].Subnet; o.IsValid() && o.Overlaps(n.Subnet) {
				v.errorf(field+".subnet", "%s overlaps subnet %s of network[%d]", n.Subnet, o, j)
				break
			}
		}
	}
}

// encryption checks that the host can run encrypted networks: it needs a
// private key and at least one peer with a public key.
func (v *validator) encryption(field string) {
	if !v.spelled("host.private_key_file") {
		v.errorf(field, "the network is encrypted but host.private_key_file is not set")
	}
	for i := range v.c.Peers {
		if v.spelled(indexPath("peer", i) + ".public_key") {
			return
		}
	}
	v.errorf(field, "the network is encrypted but no peer has a public_key")
}

// epKey identifies a value that must be unique within one network.
type epKey[T comparable] struct {
	network string
	value   T
}

func (v *validator) endpoints() {
	byName := map[string]*Network{}
	for i := range v.c.Networks {
		if n := &v.c.Networks[i]; n.Name != "" {
			if _, dup := byName[n.Name]; !dup {
				byName[n.Name] = n
			}
		}
	}
	names := map[epKey[string]]int{}
	addrs := map[epKey[netip.Addr]]int{}
	macs := map[epKey[string]]int{}
	links := map[[2]string]int{}
	for i, ep := range v.c.Endpoints {
		field := indexPath("endpoint", i)
		n := byName[ep.Network]
		if ep.Network != "" && n == nil {
			v.errorf(field+".network", "no network is named %q", ep.Network)
		}
		if ep.NetNS != "" {
			k := [2]string{ep.NetNS, ep.IfName}
			if j, dup := links[k]; dup {
				v.errorf(field+".ifname", "%s in %s is already used by endpoint[%d]", ep.IfName, ep.NetNS, j)
			} else {
				links[k] = i
			}
		}
		if n == nil {
			continue
		}
		if ep.Name != "" {
			unique(v, names, epKey[string]{n.Name, ep.Name}, i, field+".name", "name %q", ep.Name)
		}
		if ep.Address.IsValid() && n.Subnet.IsValid() {
			v.endpointAddr(field+".address", ep.Address, n)
			unique(v, addrs, epKey[netip.Addr]{n.Name, ep.Address}, i, field+".address", "%s", ep.Address)
		}
		if ep.MAC != nil {
			unique(v, macs, epKey[string]{n.Name, ep.MAC.String()}, i, field+".mac", "%s", ep.MAC)
		}
	}
}

func (v *validator) endpointAddr(field string, a netip.Addr, n *Network) {
	if err := CheckEndpointAddr(a, n); err != nil {
		v.errorf(field, "%v", err)
	}
}

// unique records k for endpoint i, or reports that an earlier endpoint of
// the same network holds it. what and arg describe the value.
func unique[T comparable](v *validator, seen map[epKey[T]]int, k epKey[T], i int, field, what string, arg any) {
	if j, dup := seen[k]; dup {
		v.errorf(field, what+" is already used by endpoint[%d] in network %s", arg, j, k.network)
		return
	}
	seen[k] = i
}
