// Package cniplugin is vxwire's CNI plugin (spec 1.1, type "vxwire"): the
// vxwire binary acts as it when CNI_COMMAND is set. ADD asks the daemon to
// attach the container's network namespace to a vxwire network and
// returns the interface, address, default route and DNS; DEL detaches;
// CHECK compares the daemon's endpoint and the namespace with prevResult;
// GC detaches attachments the runtime no longer knows; STATUS reports
// whether the daemon can serve ADD.
//
// The plugin keeps no state: it is a thin client of the daemon's
// unix-socket API and exits after one call, like CNI's dhcp plugin.
package cniplugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/vxwire/vxwire/internal/api"
)

// Client is the part of the daemon's API the plugin uses. *api.Client
// implements it; tests use a fake.
type Client interface {
	Attach(ctx context.Context, req api.AttachRequest) (api.Endpoint, error)
	Detach(ctx context.Context, req api.DetachRequest) error
	Endpoints(ctx context.Context) ([]api.Endpoint, error)
	Network(ctx context.Context, name string) (api.Network, error)
}

// Timeout bounds one command's talk with the daemon: longer than the
// daemon's own bound on an attach.
const Timeout = api.ClientTimeout

// ErrPluginNotAvailable is the CNI 1.1 STATUS error code for a plugin
// that cannot serve ADD.
const ErrPluginNotAvailable uint = 50

// Plugin implements the CNI commands. It holds no state between calls and
// is safe for concurrent use if the clients it makes are.
type Plugin struct {
	// NewClient returns a client for the daemon at socket.
	NewClient func(socket string) Client
	// Stdout receives results; nil means os.Stdout.
	Stdout io.Writer
}

// Funcs returns the plugin's commands for skel.PluginMainFuncs.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}

func (p *Plugin) client(conf *NetConf) Client {
	return p.NewClient(api.SocketPath(conf.Socket))
}

func (p *Plugin) stdout() io.Writer {
	if p.Stdout == nil {
		return os.Stdout
	}
	return p.Stdout
}

// Add attaches the container and prints the result.
func (p *Plugin) Add(args *skel.CmdArgs) (err error) {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	kv := parseArgs(args.Args)
	addr, err := conf.address(kv)
	if err != nil {
		return err
	}
	req := api.AttachRequest{
		Network:     conf.Network,
		Name:        containerName(args.ContainerID, kv),
		NetNS:       args.Netns,
		IfName:      args.IfName,
		Address:     addr,
		ContainerID: args.ContainerID,
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c := p.client(conf)
	ep, err := c.Attach(ctx, req)
	if err != nil {
		return daemonError(fmt.Sprintf("cannot attach container %s to network %q as %q", args.ContainerID, conf.Network, req.Name), err)
	}
	success := false
	defer func() {
		if !success {
			_ = c.Detach(ctx, detachRequest(conf, args))
		}
	}()
	res, err := buildResult(conf, args, ep)
	if err != nil {
		return err
	}
	if err := printResult(p.stdout(), res, conf.CNIVersion); err != nil {
		return err
	}
	success = true
	return nil
}

// Del detaches the container. It succeeds when nothing is attached (a
// repeated DEL, a daemon restarted since ADD), and when no daemon listens
// on the socket while the container's namespace is gone: the daemon owned
// the container's TAP through a file descriptor, so the kernel removed the
// interface when the daemon exited, and a restarting daemon releases the
// address of an endpoint whose namespace no longer exists. Otherwise it
// fails, so that the runtime retries: a daemon that does not answer or
// refuses, or no daemon while the namespace still exists (a restarting
// daemon would attach it again), means cleanup cannot be known to be done.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err = p.client(conf).Detach(ctx, detachRequest(conf, args))
	switch {
	case err == nil, errors.Is(err, api.ErrNotFound):
		return nil
	case daemonDown(err) && !nsExists(args.Netns):
		return nil
	}
	return daemonError(fmt.Sprintf("cannot detach container %s from network %q", args.ContainerID, conf.Network), err)
}

func detachRequest(conf *NetConf, args *skel.CmdArgs) api.DetachRequest {
	return api.DetachRequest{Network: conf.Network, ContainerID: args.ContainerID, IfName: args.IfName}
}

// Status reports whether the daemon answers and knows the network.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if _, err := p.client(conf).Network(ctx, conf.Network); err != nil {
		return types.NewError(ErrPluginNotAvailable, fmt.Sprintf("vxwire network %q is not available: %v", conf.Network, err), "")
	}
	return nil
}

// GC detaches the endpoints of the conf's network that the plugin
// attached (they carry a container id and a namespace path that is not
// /proc/PID/ns/net, which the OCI hook uses and cleans up at poststop)
// and whose container id and interface are not among the valid
// attachments.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	valid := make(map[types.GCAttachment]bool, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		valid[a] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c := p.client(conf)
	eps, err := c.Endpoints(ctx)
	if err != nil {
		return daemonError("cannot list endpoints", err)
	}
	var errs []error
	for _, ep := range eps {
		if ep.Network != conf.Network || !pluginAttached(ep) || valid[types.GCAttachment{ContainerID: ep.ContainerID, IfName: ep.IfName}] {
			continue
		}
		req := api.DetachRequest{Network: ep.Network, ContainerID: ep.ContainerID, IfName: ep.IfName}
		if err := c.Detach(ctx, req); err != nil && !errors.Is(err, api.ErrNotFound) {
			errs = append(errs, fmt.Errorf("container %s: %w", ep.ContainerID, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return daemonError("cannot detach stale attachments", err)
	}
	return nil
}

// pluginAttached reports whether ep looks attached by a CNI runtime.
func pluginAttached(ep api.Endpoint) bool {
	return ep.ContainerID != "" && ep.Source != "config" && !strings.HasPrefix(ep.NetNS, "/proc/")
}

// daemonDown reports whether err says that no daemon listens on the
// socket: it does not exist or nobody accepts on it.
func daemonDown(err error) bool {
	return errors.Is(err, api.ErrUnreachable) && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED))
}

// daemonError turns an API error into a CNI error: 11 (try again later)
// when the daemon cannot be reached, 7 (invalid network configuration)
// when the daemon finds the request invalid or the network unknown, 999
// otherwise.
func daemonError(what string, err error) error {
	msg := fmt.Sprintf("%s: %v", what, err)
	switch {
	case errors.Is(err, api.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return types.NewError(types.ErrTryAgainLater, msg, "is the vxwire daemon running, and is the socket right?")
	case errors.Is(err, api.ErrInvalid), errors.Is(err, api.ErrNotFound):
		return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
	}
	return types.NewError(types.ErrInternal, msg, "")
}
