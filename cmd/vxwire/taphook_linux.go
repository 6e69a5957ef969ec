package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// hookTAP makes the TAPs of a hook run inside a rootless runtime's user
// namespace, with package tap (hook.TAPMaker).
type hookTAP struct{}

// Open makes the TAP from this process when it may enter netns (a hook
// inside the runtime's user namespace, podman's), else through the helper
// (taphelper_linux.go), which joins the owning user namespace first.
func (hookTAP) Open(netns, ifname string) (*os.File, error) {
	f, err := tap.OpenInNetNS(netns, ifname)
	if err != nil && deniedErr(err) && !strings.Contains(err.Error(), "/dev/net/tun") {
		return helperOpen(netns, ifname)
	}
	return f, err
}

func (hookTAP) Configure(netns string, ep api.Endpoint) error {
	addr, err := netip.ParsePrefix(ep.Address)
	if err != nil {
		return fmt.Errorf("the daemon answered address %q: %w", ep.Address, err)
	}
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("the daemon answered mac %q: %w", ep.MAC, err)
	}
	cfg := tap.Config{NetNS: netns, Name: ep.IfName, MAC: mac, Addr: addr, MTU: ep.MTU, GSOMaxSegs: encap.FramesPerSend(ep.MTU)}
	if ep.DefaultRoute {
		if cfg.Gateway, err = netip.ParseAddr(ep.Gateway); err != nil {
			return fmt.Errorf("the daemon answered gateway %q: %w", ep.Gateway, err)
		}
	}
	err = tap.ConfigureInNetNS(cfg)
	if err != nil && deniedErr(err) {
		return helperConfigure(netns, cfg)
	}
	return err
}
