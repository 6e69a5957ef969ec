package tunnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/resolver"
)

// dnsPort is where each network's gateway serves DNS.
const dnsPort = 53

// startDNS serves DNS for network n on its gateway, answering from the
// snapshot's name table. Names of the host's other networks are isolated:
// they are answered NXDOMAIN, never forwarded.
func (e *Engine) startDNS(n *network, cfg *config.Config) error {
	pc, err := n.gw.gw.ListenUDP(dnsPort)
	if err != nil {
		return fmt.Errorf("dns of network %q: %w", n.cfg.Name, err)
	}
	ln, err := n.gw.gw.ListenTCP(dnsPort)
	if err != nil {
		pc.Close()
		return fmt.Errorf("dns of network %q: %w", n.cfg.Name, err)
	}
	n.dns = resolver.New(pc, ln, names{&e.sw.snap}, resolver.Config{
		Network:   n.cfg.Name,
		Subnet:    n.cfg.Subnet,
		Upstreams: cfg.Host.DNSUpstream,
		Forward:   n.cfg.Egress,
		Isolated:  otherNetworks(cfg, n.cfg.Name),
		Crash:     e.Reporter().With("network", n.cfg.Name, "component", "dns"),
	}, e.l.With("network", n.cfg.Name, "component", "dns"))
	e.goSafe("dns "+n.cfg.Name, func() {
		if err := n.dns.Serve(); err != nil {
			e.l.Warn("dns stopped", "error", err, "network", n.cfg.Name)
		}
	})
	return nil
}

// resolvConfPath returns where `ip netns exec` looks for a namespace's
// resolv.conf (it bind-mounts /etc/netns/NAME/resolv.conf over
// /etc/resolv.conf), or "" for namespaces not under /var/run/netns, whose
// runtime sets DNS itself.
func resolvConfPath(netns string) string {
	dir, name := filepath.Split(filepath.Clean(netns))
	switch filepath.Clean(dir) {
	case "/var/run/netns", "/run/netns":
		return filepath.Join("/etc/netns", name, "resolv.conf")
	}
	return ""
}

// removeResolvConf removes a resolv.conf that unlockedWriteResolvConf
// wrote.
func removeResolvConf(p *port) { removeResolvConfOf(p.cfg.NetNS) }

// removeResolvConfOf removes the resolv.conf that unlockedWriteResolvConf
// wrote for the namespace at netns, if any.
func removeResolvConfOf(netns string) {
	path := resolvConfPath(netns)
	if path == "" {
		return
	}
	if b, err := os.ReadFile(path); err != nil || !strings.HasPrefix(string(b), resolvHeader) {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
	os.Remove(filepath.Dir(path)) // only if empty
}

const resolvHeader = "# written by vxwire: the network's gateway answers container names\n"

// otherNetworks lists the names of cfg's networks other than name: their
// names are answered NXDOMAIN on network name, never forwarded upstream.
func otherNetworks(cfg *config.Config, name string) []string {
	var others []string
	for _, o := range cfg.Networks {
		if o.Name != name {
			others = append(others, o.Name)
		}
	}
	return others
}
