package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// hookTAP makes the TAPs of a hook run inside a rootless runtime's user
// namespace, with package tap (hook.TAPMaker).
type hookTAP struct{}

func (hookTAP) Open(netns, ifname string) (*os.File, error) { return tap.OpenInNetNS(netns, ifname) }

func (hookTAP) Configure(netns string, ep api.Endpoint) error {
	addr, err := netip.ParsePrefix(ep.Address)
	if err != nil {
		return fmt.Errorf("the daemon answered address %q: %w", ep.Address, err)
	}
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("the daemon answered mac %q: %w", ep.MAC, err)
	}
	cfg := tap.Config{NetNS: netns, Name: ep.IfName, MAC: mac, Addr: addr, MTU: ep.MTU}
	if ep.DefaultRoute {
		if cfg.Gateway, err = netip.ParseAddr(ep.Gateway); err != nil {
			return fmt.Errorf("the daemon answered gateway %q: %w", ep.Gateway, err)
		}
	}
	return tap.ConfigureInNetNS(cfg)
}
