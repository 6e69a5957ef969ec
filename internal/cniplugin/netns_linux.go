package cniplugin

import (
	"fmt"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// inNetNS runs fn in the network namespace at path.
func inNetNS(path string, fn func() error) error {
	return ns.WithNetNSPath(path, func(ns.NetNS) error { return fn() })
}

// nsExists reports whether path names a network namespace.
func nsExists(path string) bool {
	return path != "" && ns.IsNSorErr(path) == nil
}

// checkLink verifies, inside the container's namespace, that ifName
// exists and has the addresses of ips, and that each IPv4 route of routes
// is in the main table.
func checkLink(ifName string, ips []*current.IPConfig, routes []*types.Route) error {
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("cannot find interface %s: %w", ifName, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("cannot list the addresses of %s: %w", ifName, err)
	}
	for _, c := range ips {
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == c.Address.String() }) {
			return fmt.Errorf("interface %s lacks address %s", ifName, c.Address.String())
		}
	}
	have, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("cannot list routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst.IP.To4() == nil {
			continue
		}
		if !slices.ContainsFunc(have, func(h netlink.Route) bool { return sameRoute(h, r) }) {
			return fmt.Errorf("route %s via %v is missing", r.Dst.String(), r.GW)
		}
	}
	return nil
}

// sameRoute reports whether the kernel's route h is r. The kernel's
// default route has no destination.
func sameRoute(h netlink.Route, r *types.Route) bool {
	ones, _ := r.Dst.Mask.Size()
	switch {
	case h.Dst == nil && ones != 0:
		return false
	case h.Dst != nil && h.Dst.String() != r.Dst.String():
		return false
	}
	return r.GW == nil || r.GW.Equal(h.Gw)
}
