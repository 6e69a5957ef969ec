package tunnel

import (
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A container may be attached to several networks: one TAP per network
// (eth0, eth1, …) in the same namespace. As with Docker, the first network
// attached owns the default route and the others get their subnet route
// only. Its resolv.conf names the first network's gateway, and searches
// every attached network in attach order: that gateway answers NAME.OTHER
// for each other network the asking container is attached to (names
// isolated from containers on the first network alone), so every attached
// network's names resolve through one server, and a bare NAME resolves on
// the first network.

// nsID identifies a network namespace by its nsfs device and inode, so
// that /proc/PID/ns/net and /var/run/netns/NAME of one namespace compare
// equal. The zero value is no namespace (one that could not be read).
type nsID struct{ dev, ino uint64 }

// netnsID reads the identity of the namespace at path; the zero nsID when
// it cannot be read.
func netnsID(path string) nsID {
	id, _ := statNetNS(path)
	return id
}

// unlockedSiblings returns the other open ports in the namespace of p, in
// attach order. A port whose namespace could not be read has none.
func (e *Engine) unlockedSiblings(p *port) []*port {
	if p.ns == (nsID{}) {
		return nil
	}
	var out []*port
	for _, o := range e.ports {
		if o != p && !o.gateway && o.ns == p.ns && !o.closed.Load() {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *port) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// unlockedOwnsDefaultRoute reports whether a port being opened in namespace
// ns gets the default route: when no other open port there has it.
func (e *Engine) unlockedOwnsDefaultRoute(ns nsID) bool {
	if ns == (nsID{}) {
		return true
	}
	for _, o := range e.ports {
		if o.ns == ns && o.defaultRoute && !o.closed.Load() {
			return false
		}
	}
	return true
}

// unlockedNamespaceNetworks returns the networks p's container is attached
// to, p's first when it owns the default route, else the owner's first and
// the rest in attach order; dns is the gateway that answers for them.
func (e *Engine) unlockedNamespaceNetworks(p *port) (dns netip.Addr, search []string) {
	all := append(e.unlockedSiblings(p), p)
	slices.SortStableFunc(all, func(a, b *port) int {
		switch {
		case a.defaultRoute && !b.defaultRoute:
			return -1
		case b.defaultRoute && !a.defaultRoute:
			return 1
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, o := range all {
		if !slices.Contains(search, o.key.network) {
			search = append(search, o.key.network)
		}
	}
	return all[0].net.cfg.Gateway, search
}

// unlockedAddShared records, for each local port, the other networks its
// container is attached to, so that its first network's resolver answers
// their names to it (resolver.Shared).
func (e *Engine) unlockedAddShared(s *snapshot) {
	byNS := make(map[nsID][]*port)
	for _, p := range e.ports {
		if !p.gateway && !p.closed.Load() && p.ns != (nsID{}) {
			byNS[p.ns] = append(byNS[p.ns], p)
		}
	}
	for _, p := range e.ports {
		for _, o := range byNS[p.ns] {
			if o == p || o.key.network == p.key.network {
				continue
			}
			m := s.names.shared[p.key.network]
			if m == nil {
				m = map[netip.Addr][]string{}
				s.names.shared[p.key.network] = m
			}
			a := p.addr.Addr()
			if !slices.Contains(m[a], o.key.network) {
				m[a] = append(m[a], o.key.network)
			}
		}
	}
}

// Shares reports whether client, an address of a local container on
// network, belongs to a container also attached to other.
func (n names) Shares(network string, client netip.Addr, other string) bool {
	return slices.Contains(n.snap.Load().names.shared[network][client], other)
}

// unlockedWriteResolvConf points the resolv.conf of p's namespace at the
// gateway of the container's first network, searching every network it is
// attached to, unless the file exists already and was not written by
// vxwire. Namespaces outside /var/run/netns get DNS from their runtime.
func (e *Engine) unlockedWriteResolvConf(p *port) error {
	path := resolvConfPath(p.cfg.NetNS)
	if path == "" {
		return nil
	}
	if b, err := os.ReadFile(path); err == nil && !strings.HasPrefix(string(b), resolvHeader) {
		return nil
	}
	gw, search := e.unlockedNamespaceNetworks(p)
	content := fmt.Sprintf("%snameserver %s\nsearch %s\noptions ndots:0\n", resolvHeader, gw, strings.Join(search, " "))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// unlockedDetachResolvConf updates the resolv.conf of a namespace that p
// leaves: rewritten for the networks that stay, removed with the last.
func (e *Engine) unlockedDetachResolvConf(p *port) {
	if sib := e.unlockedSiblings(p); len(sib) > 0 {
		if err := e.unlockedWriteResolvConf(sib[0]); err != nil {
			e.l.Warn("cannot write resolv.conf", "error", err, "network", sib[0].key.network, "endpoint", sib[0].key.name)
		}
		return
	}
	removeResolvConf(p)
}
