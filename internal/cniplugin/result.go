package cniplugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vxwire/vxwire/internal/api"
)

// buildResult turns the daemon's endpoint into a CNI result, appended to
// prevResult when the plugin is chained after another one.
func buildResult(conf *NetConf, args *skel.CmdArgs, ep api.Endpoint) (*current.Result, error) {
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if conf.PrevResult != nil {
		prev, err := current.NewResultFromResult(conf.PrevResult)
		if err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("cannot convert prevResult: %v", err), "")
		}
		res = prev
	}
	addr, err := endpointAddr(ep)
	if err != nil {
		return nil, err
	}
	gw := net.ParseIP(ep.Gateway).To4()
	ifName := ep.IfName
	if ifName == "" {
		ifName = args.IfName
	}
	res.Interfaces = append(res.Interfaces, &current.Interface{Name: ifName, Mac: ep.MAC, Mtu: ep.MTU, Sandbox: args.Netns})
	res.IPs = append(res.IPs, &current.IPConfig{
		Interface: current.Int(len(res.Interfaces) - 1),
		Address:   addr,
		Gateway:   gw,
	})
	if gw != nil && ep.DefaultRoute {
		res.Routes = append(res.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw})
	}
	res.DNS.Nameservers = append(res.DNS.Nameservers, ep.DNS.Nameservers...)
	search := ep.DNS.Search
	if len(search) == 0 {
		search = []string{conf.Network}
	}
	res.DNS.Search = append(res.DNS.Search, search...)
	return res, nil
}

// endpointAddr parses the endpoint's CIDR address, keeping the host bits.
func endpointAddr(ep api.Endpoint) (net.IPNet, error) {
	a, n, err := net.ParseCIDR(ep.Address)
	if err != nil || a.To4() == nil {
		return net.IPNet{}, types.NewError(types.ErrInternal, fmt.Sprintf("the daemon answered with an unusable address %q", ep.Address), "")
	}
	return net.IPNet{IP: a.To4(), Mask: n.Mask}, nil
}

// printResult writes res as cniVersion asks.
func printResult(w io.Writer, res *current.Result, cniVersion string) error {
	r, err := res.GetAsVersion(cniVersion)
	if err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion, fmt.Sprintf("cannot express the result as version %s: %v", cniVersion, err), "")
	}
	if err := r.PrintTo(w); err != nil {
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("cannot write the result: %v", err), "")
	}
	return nil
}

// Check verifies that the daemon still has the container's endpoint, that
// it matches prevResult, and that the namespace has the interface, the
// address and the routes prevResult lists.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.PrevResult == nil {
		return invalidConf("CHECK needs prevResult")
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("cannot convert prevResult: %v", err), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	eps, err := p.client(conf).Endpoints(ctx)
	if err != nil {
		return daemonError("cannot list endpoints", err)
	}
	i := slices.IndexFunc(eps, func(ep api.Endpoint) bool {
		return ep.Network == conf.Network && ep.ContainerID == args.ContainerID && (ep.IfName == args.IfName || ep.IfName == "")
	})
	if i < 0 {
		return types.NewError(types.ErrUnknownContainer, fmt.Sprintf("container %s has no endpoint %s on network %q", args.ContainerID, args.IfName, conf.Network), "")
	}
	ips, err := matchPrevResult(prev, args, eps[i])
	if err != nil {
		return types.NewError(types.ErrInternal, err.Error(), "")
	}
	err = inNetNS(args.Netns, func() error {
		return checkLink(args.IfName, ips, prev.Routes)
	})
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("namespace %s: %v", args.Netns, err), "")
	}
	return nil
}

// matchPrevResult compares the endpoint with prevResult's interface of the
// same name and sandbox, and returns that interface's addresses.
func matchPrevResult(prev *current.Result, args *skel.CmdArgs, ep api.Endpoint) ([]*current.IPConfig, error) {
	idx := slices.IndexFunc(prev.Interfaces, func(i *current.Interface) bool {
		return i.Name == args.IfName && i.Sandbox == args.Netns
	})
	if idx < 0 {
		return nil, fmt.Errorf("prevResult has no interface %s in %s", args.IfName, args.Netns)
	}
	if mac := prev.Interfaces[idx].Mac; mac != "" && !strings.EqualFold(mac, ep.MAC) {
		return nil, fmt.Errorf("interface %s has MAC %s, prevResult says %s", args.IfName, ep.MAC, mac)
	}
	want, err := endpointAddr(ep)
	if err != nil {
		return nil, err
	}
	var ips []*current.IPConfig
	found := false
	for _, c := range prev.IPs {
		if c.Interface == nil || *c.Interface != idx {
			continue
		}
		ips = append(ips, c)
		found = found || c.Address.String() == want.String()
	}
	if !found {
		return nil, fmt.Errorf("interface %s has address %s, which prevResult does not list", args.IfName, ep.Address)
	}
	return ips, nil
}
