package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

func cmdNetwork(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("vxwire network create|ls|inspect|rm (see vxwire help)")
	}
	switch args[0] {
	case "create":
		return cmdNetworkCreate(args[1:], stdout)
	case "ls", "list":
		return cmdNetworkLs(args[1:], stdout)
	case "inspect":
		return cmdNetworkInspect(args[1:], stdout)
	case "rm", "remove":
		return cmdNetworkRm(args[1:], stdout)
	}
	return usageError("unknown command \"network %s\" (see vxwire help)", args[0])
}

func cmdNetworkCreate(args []string, stdout io.Writer) error {
	fs := newFlags("network create")
	cf := addClientFlags(fs)
	subnet := fs.String("subnet", "", "IPv4 subnet in CIDR form (required)")
	gateway := fs.String("gateway", "", "gateway address (default: the subnet's first host)")
	vni := fs.Uint64("vni", 0, "VXLAN network identifier (default: the lowest free one from 256)")
	mtu := fs.Int("mtu", 0, "MTU of the containers' interfaces (default: the underlay's minus the overhead)")
	egress := fs.Bool("egress", true, "let containers reach beyond the overlay")
	var opts stringList
	fs.Var(&opts, "opt", "network option; encrypted is the one known")
	name, err := parseName(fs, args)
	if err != nil {
		return err
	}
	spec := api.NetworkSpec{Name: name, VNI: uint32(*vni), MTU: *mtu}
	if err := checkCreateFlags(&spec, *subnet, *gateway, *vni, opts); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "egress" {
			spec.Egress = egress
		}
	})
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		n, err := c.CreateNetwork(ctx, spec)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, n)
		}
		fmt.Fprintln(stdout, n.Name)
		return nil
	})
}

// checkCreateFlags checks the flags of network create with the config
// rules (config.NewNetwork) and fills spec from them; errors are usage
// errors naming the flag.
func checkCreateFlags(spec *api.NetworkSpec, subnet, gateway string, vni uint64, opts []string) error {
	for _, o := range opts {
		k, v, hasValue := strings.Cut(o, "=")
		if k != "encrypted" {
			return usageError("--opt %q: unknown option (known: encrypted)", o)
		}
		spec.Encrypted = true
		if hasValue {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return usageError("--opt %q: want encrypted, encrypted=true or encrypted=false", o)
			}
			spec.Encrypted = b
		}
	}
	if subnet == "" && config.CheckLabel(spec.Name) == nil {
		return usageError("network create needs --subnet CIDR")
	}
	n, err := config.NewNetwork(spec.Name, uint32(min(vni, math.MaxUint32)), subnet, gateway, spec.MTU, spec.Encrypted, true)
	var fe *config.FieldError
	if errors.As(err, &fe) {
		if fe.Field == "name" {
			return usageError("network create: NAME: %v", fe.Err)
		}
		return usageError("--%s: %v", fe.Field, fe.Err)
	} else if err != nil {
		return usageError("network create: %v", err)
	}
	spec.Subnet = n.Subnet.String()
	if gateway != "" {
		spec.Gateway = n.Gateway.String()
	}
	return nil
}

func cmdNetworkLs(args []string, stdout io.Writer) error {
	fs := newFlags("network ls")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		ns, err := c.Networks(ctx)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, ns)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tVNI\tSUBNET\tGATEWAY\tMTU\tENCRYPTED\tEGRESS\tENDPOINTS\tSOURCE")
		for _, n := range ns {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", n.Name, n.VNI, n.Subnet, n.Gateway, n.MTU,
				yesNo(n.Encrypted), yesNo(n.Egress), n.Endpoints, n.Source)
		}
		return tw.Flush()
	})
}

func cmdNetworkInspect(args []string, stdout io.Writer) error {
	fs := newFlags("network inspect")
	cf := addClientFlags(fs)
	name, err := parseName(fs, args)
	if err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		n, err := c.Network(ctx, name)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, n)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 1, ' ', 0)
		fmt.Fprintf(tw, "name:\t%s\nvni:\t%d\nsubnet:\t%s\ngateway:\t%s\nmtu:\t%d\n", n.Name, n.VNI, n.Subnet, n.Gateway, n.MTU)
		fmt.Fprintf(tw, "encrypted:\t%s\negress:\t%s\nendpoints:\t%d\nsource:\t%s\n", yesNo(n.Encrypted), yesNo(n.Egress), n.Endpoints, n.Source)
		if n.Error != "" {
			fmt.Fprintf(tw, "error:\t%s\n", n.Error)
		}
		if err := tw.Flush(); err != nil || len(n.Members) == 0 {
			return err
		}
		fmt.Fprintln(stdout, "members (every host):")
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tADDRESS\tMAC\tHOST\tALIASES")
		for _, m := range n.Members {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Name, m.Address, m.MAC, orDash(m.Host), orDash(strings.Join(m.Aliases, ",")))
		}
		return tw.Flush()
	})
}

func cmdNetworkRm(args []string, stdout io.Writer) error {
	fs := newFlags("network rm")
	cf := addClientFlags(fs)
	name, err := parseName(fs, args)
	if err != nil {
		return err
	}
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		if err := c.RemoveNetwork(ctx, name); err != nil {
			return err
		}
		if !*cf.json {
			fmt.Fprintln(stdout, name)
		}
		return nil
	})
}
