package config

import (
	"net/netip"
)

// validate runs the checks that span several fields: uniqueness, overlap
// and membership. The later of two clashing entries is the one reported.
func (v *validator) validate() {
	v.peers()
	v.networks()
	v.endpoints()
}

func (v *validator) peers() {
	h := v.c.Host
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, p := range v.c.Peers {
		field := indexPath("peer", i)
		if p.Name != "" {
			if j, dup := names[p.Name]; dup {
				v.errorf(field+".name", "name %q is already used by peer[%d]", p.Name, j)
			} else if p.Name == h.Name {
				v.errorf(field+".name", "name %q is the host's own name", p.Name)
			} else {
				names[p.Name] = i
			}
		}
		if p.Address.IsValid() {
			if j, dup := addrs[p.Address]; dup {
				v.errorf(field+".address", "%s is already used by peer[%d]", p.Address, j)
			} else if p.Address == h.Address {
				v.errorf(field+".address", "%s is the host's own address", p.Address)
			} else {
				addrs[p.Address] = i
			}
		}
	}
}

func (v *validator) networks() {
	names := map[string]int{}
	vnis := map[uint32]int{}
	for i, n := range v.c.Networks {
		field := indexPath("network", i)
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
	msg := checkHostAddr(a, n.Subnet)
	switch {
	case msg != "":
		v.errorf(field, "%s of network %s", msg, n.Name)
	case a == n.Gateway:
		v.errorf(field, "%s is the gateway of network %s", a, n.Name)
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
