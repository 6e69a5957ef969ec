package consensus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/config"
)

// A service's virtual IP is one address for the whole overlay, held in
// the log: the first host that gives the service a VIP allocates it from
// its own block and commits it with a vip-use entry; a later vip-use of
// the same (network, service), by any host, adds that host to the VIP's
// users and returns the committed address, which the host adopts in
// place of its own. A host that stops serving the service commits a
// vip-drop; when the last user drops, the VIP leaves the log and its
// allocating host (Owner) releases the address in its block. Services of
// the config file and of the API alike go through this, since every
// host that applies a service registers as a user.

// Operations on service VIPs.
const (
	opVIPUse  = "vip-use"
	opVIPDrop = "vip-drop"
)

// maxVIPUsers bounds the users of one VIP (one per host).
const maxVIPUsers = 4096

// VIP is a service's virtual IP held in the log.
type VIP struct {
	// Network and Service name the service.
	Network string `json:"network"`
	Service string `json:"service"`
	// IP is the address, from a block (or a pin) of Owner.
	IP netip.Addr `json:"ip"`
	// Owner is the host that allocated IP: it releases it once the VIP
	// has no users.
	Owner string `json:"owner"`
	// Users are the hosts that apply the service, sorted.
	Users []string `json:"users"`
}

type vipKey struct{ Network, Service string }

// checkVIP validates a vip command: the service's name by the config
// rules, and for a use the address, which must be a unicast IPv4 one.
func (c *command) checkVIP() error {
	if c.Net != nil || c.Pub != nil || c.Svc != nil || c.Subnet.IsValid() {
		return errors.New("a service VIP command carries only a network, a service, an address and a host")
	}
	if err := config.CheckService(&config.Service{Network: c.Network, Name: c.Endpoint}); err != nil {
		return err
	}
	switch {
	case c.Op == opVIPUse:
		return config.CheckServiceVIP(c.IP, nil)
	case c.IP.IsValid():
		return errors.New("a VIP drop carries no address")
	}
	return nil
}

// unlockedUseVIP adds c.Host to the users of the VIP of service
// c.Endpoint, creating it with c.IP when the log holds none, and returns
// the VIP's address. A new VIP's address must lie in a block, or a pin,
// of c.Host, and be no other service's VIP.
func (f *fsm) unlockedUseVIP(c command) result {
	k := vipKey{c.Network, c.Endpoint}
	if v, ok := f.vips[k]; ok {
		if i, found := slices.BinarySearch(v.Users, c.Host); !found {
			if len(v.Users) >= maxVIPUsers {
				return result{Err: fmt.Sprintf("VIP of service %q of network %s has %d users already", c.Endpoint, c.Network, maxVIPUsers)}
			}
			v.Users = slices.Insert(slices.Clone(v.Users), i, c.Host)
			f.vips[k] = v
		}
		return result{VIP: v.IP, Holder: v.Owner}
	}
	b, inBlock := f.unlockedOwner(c.Network, c.IP)
	p, pinned := f.pins[pinKey{c.Network, c.IP}]
	if !(inBlock && b.Host == c.Host && !pinned) && !(pinned && p.Host == c.Host) {
		return result{Err: fmt.Sprintf("address %s of network %s is not in a block of %s", c.IP, c.Network, c.Host)}
	}
	for _, o := range f.vips {
		if o.Network == c.Network && o.IP == c.IP {
			return result{Err: fmt.Sprintf("address %s of network %s is the VIP of service %q", c.IP, c.Network, o.Service)}
		}
	}
	if f.vips == nil {
		f.vips = make(map[vipKey]VIP)
	}
	f.vips[k] = VIP{Network: c.Network, Service: c.Endpoint, IP: c.IP, Owner: c.Host, Users: []string{c.Host}}
	f.signal()
	return result{VIP: c.IP, Holder: c.Host}
}

// unlockedDropVIP removes c.Host from the users of the VIP of service
// c.Endpoint; the last one out removes the VIP.
func (f *fsm) unlockedDropVIP(c command) result {
	k := vipKey{c.Network, c.Endpoint}
	v, ok := f.vips[k]
	if !ok {
		return result{}
	}
	i, found := slices.BinarySearch(v.Users, c.Host)
	if !found {
		return result{}
	}
	v.Users = slices.Delete(slices.Clone(v.Users), i, i+1)
	if len(v.Users) == 0 {
		delete(f.vips, k)
		f.signal()
	} else {
		f.vips[k] = v
	}
	return result{}
}

// unlockedDropVIPs drops every VIP of network (a removed network).
func (f *fsm) unlockedDropVIPs(network string) {
	for k := range f.vips {
		if k.Network == network {
			delete(f.vips, k)
		}
	}
}

func (f *fsm) unlockedVIPList() []VIP {
	out := make([]VIP, 0, len(f.vips))
	for _, v := range f.vips {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b VIP) int {
		if c := strings.Compare(a.Network, b.Network); c != 0 {
			return c
		}
		return strings.Compare(a.Service, b.Service)
	})
	return out
}

// restoreVIPs rebuilds the VIPs of a snapshot, dropping what the rules
// refuse, a second VIP of one service or of one address, and users
// listed twice.
func restoreVIPs(list []VIP) map[vipKey]VIP {
	m := make(map[vipKey]VIP, len(list))
	for _, v := range list {
		cmd := command{Op: opVIPUse, Network: v.Network, Endpoint: v.Service, IP: v.IP, Host: v.Owner}
		k := vipKey{v.Network, v.Service}
		if _, dup := m[k]; dup || cmd.check() != nil || len(v.Users) == 0 || len(v.Users) > maxVIPUsers {
			continue
		}
		if slices.ContainsFunc(slices.Collect(maps.Values(m)), func(o VIP) bool { return o.Network == v.Network && o.IP == v.IP }) {
			continue
		}
		users := slices.Clone(v.Users)
		slices.Sort(users)
		users = slices.Compact(users)
		if slices.ContainsFunc(users, func(h string) bool { return config.CheckHostName(h) != nil }) {
			continue
		}
		v.Users = users
		m[k] = v
	}
	return m
}

func (f *fsm) vip(network, service string) (VIP, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.vips[vipKey{network, service}]
	return v, ok
}

func (f *fsm) vipList() []VIP {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.unlockedVIPList()
}

// UseVIP commits that this host applies service name of network with
// the VIP ip (an address this host allocated, used when the log holds no
// VIP of the service yet) and returns the service's VIP as committed,
// which is ip or the address another host committed first. It fails
// like Claim without a quorum.
func (n *Node) UseVIP(ctx context.Context, network, name string, ip netip.Addr) (netip.Addr, error) {
	r, err := n.propose(ctx, command{Op: opVIPUse, Network: network, Endpoint: name, IP: ip, Host: n.cfg.Name})
	if err != nil {
		return netip.Addr{}, err
	}
	return r.VIP, nil
}

// DropVIP commits that this host no longer applies service name of
// network.
func (n *Node) DropVIP(ctx context.Context, network, name string) error {
	_, err := n.propose(ctx, command{Op: opVIPDrop, Network: network, Endpoint: name, Host: n.cfg.Name})
	return err
}

// ServiceVIP returns the VIP of service name of network, as applied here.
// Changes are signalled on NetworkChanges.
func (n *Node) ServiceVIP(network, name string) (VIP, bool) { return n.fsm.vip(network, name) }

// ServiceVIPs returns every VIP as applied here, sorted by network and
// service.
func (n *Node) ServiceVIPs() []VIP { return n.fsm.vipList() }
