package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

func cmdAttach(args []string, stdout io.Writer) error {
	fs := newFlags("attach")
	cf := addClientFlags(fs)
	var req api.AttachRequest
	fs.StringVar(&req.Network, "network", "", "network to attach to (required)")
	fs.StringVar(&req.NetNS, "netns", "", "path of the container's network namespace (required)")
	fs.StringVar(&req.Name, "name", "", "name in DNS (default: the base name of --netns)")
	fs.StringVar(&req.Address, "ip", "", "IPv4 address (default: the next free one)")
	fs.StringVar(&req.MAC, "mac", "", "MAC address (default: derived from the address)")
	fs.StringVar(&req.IfName, "ifname", "", "interface name in the namespace (default eth0)")
	fs.StringVar(&req.ContainerID, "container-id", "", "container id, for a later detach --container-id")
	fs.Var((*stringList)(&req.Aliases), "alias", "another name in DNS (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkAttachFlags(&req); err != nil {
		return err
	}
	return cf.call(api.AttachTimeout, func(ctx context.Context, c *api.Client) error {
		ep, err := c.Attach(ctx, req)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, ep)
		}
		return printEndpoints(stdout, []api.Endpoint{ep})
	})
}

// checkAttachFlags checks the flags of attach and fills defaults; errors
// are usage errors naming the flag.
func checkAttachFlags(req *api.AttachRequest) error {
	switch {
	case req.Network == "":
		return usageError("attach needs --network NAME")
	case req.NetNS == "":
		return usageError("attach needs --netns PATH")
	}
	if req.Name == "" {
		base := filepath.Base(req.NetNS)
		if base == "." || base == "/" {
			return usageError("attach: --netns %q has no base name; give --name", req.NetNS)
		}
		req.Name = base
	}
	ep, err := config.NewEndpoint(req.Network, req.Name, req.Aliases, req.IfName, req.Address, req.MAC)
	var fe *config.FieldError
	if errors.As(err, &fe) {
		flag := map[string]string{"name": "attach: name", "aliases": "--alias", "ifname": "--ifname", "address": "--ip", "mac": "--mac"}[fe.Field]
		if flag == "" {
			flag = "attach: " + fe.Field
		}
		return usageError("%s: %v", flag, fe.Err)
	} else if err != nil {
		return usageError("attach: %v", err)
	}
	if ep.MAC != nil {
		req.MAC = ep.MAC.String()
	}
	return nil
}

func cmdDetach(args []string, stdout io.Writer) error {
	fs := newFlags("detach")
	cf := addClientFlags(fs)
	var req api.DetachRequest
	fs.StringVar(&req.Network, "network", "", "network of the endpoint")
	fs.StringVar(&req.Name, "name", "", "name of the endpoint")
	fs.StringVar(&req.ContainerID, "container-id", "", "container id given at attach")
	fs.StringVar(&req.IfName, "ifname", "", "with --container-id: which of its interfaces")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case req.ContainerID != "" && req.Name != "":
		return usageError("detach: --name and --container-id exclude each other")
	case req.ContainerID == "" && req.IfName != "":
		return usageError("detach: --ifname goes with --container-id")
	case req.ContainerID == "" && (req.Network == "" || req.Name == ""):
		return usageError("detach needs --network NAME --name N, or --container-id ID")
	}
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		return c.Detach(ctx, req)
	})
}

func cmdEndpoint(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("vxwire endpoint ls (see vxwire help)")
	}
	if args[0] != "ls" && args[0] != "list" {
		return usageError("unknown command \"endpoint %s\" (see vxwire help)", args[0])
	}
	fs := newFlags("endpoint ls")
	cf := addClientFlags(fs)
	network := fs.String("network", "", "list only this network's endpoints")
	all := fs.Bool("all", false, "list the endpoints of every host, on the networks this host carries")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		list := c.Endpoints
		if *all {
			list = c.AllEndpoints
		}
		eps, err := list(ctx)
		if err != nil {
			return err
		}
		if *network != "" {
			kept := []api.Endpoint{}
			for _, ep := range eps {
				if ep.Network == *network {
					kept = append(kept, ep)
				}
			}
			eps = kept
		}
		if *cf.json {
			return printJSON(stdout, eps)
		}
		return printEndpoints(stdout, eps)
	})
}

func printEndpoints(w io.Writer, eps []api.Endpoint) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tNAME\tHOST\tADDRESS\tGATEWAY\tMAC\tIFNAME\tNETNS\tCONTAINER\tALIASES\tSOURCE")
	for _, ep := range eps {
		src := ep.Source
		if ep.Error != "" {
			src += " (not attached: " + ep.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ep.Network, ep.Name, orDash(ep.Host), orDash(ep.Address), orDash(ep.Gateway), orDash(ep.MAC),
			orDash(ep.IfName), orDash(ep.NetNS), orDash(ep.ContainerID), orDash(strings.Join(ep.Aliases, ",")), src)
	}
	return tw.Flush()
}
