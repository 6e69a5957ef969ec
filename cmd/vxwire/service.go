package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

func cmdService(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("vxwire service add|ls|rm (see vxwire help)")
	}
	switch args[0] {
	case "add":
		return cmdServiceAdd(args[1:], stdout)
	case "ls", "list":
		return cmdServiceLs(args[1:], stdout)
	case "rm", "remove":
		return cmdServiceRm(args[1:], stdout)
	}
	return usageError("unknown command \"service %s\" (see vxwire help)", args[0])
}

func cmdServiceAdd(args []string, stdout io.Writer) error {
	fs := newFlags("service add")
	cf := addClientFlags(fs)
	network := fs.String("network", "", "network of the service (required)")
	vip := fs.Bool("vip", true, "give the service a virtual IP")
	name, err := parseName(fs, args)
	if err != nil {
		return err
	}
	// The same rules the daemon applies, so that a typo fails here.
	if err := config.CheckService(&config.Service{Network: *network, Name: name}); err != nil {
		return usageError("service add: %v", err)
	}
	spec := api.ServiceSpec{Network: *network, Name: name, VIP: vip}
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		s, err := c.AddService(ctx, spec)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, s)
		}
		fmt.Fprintln(stdout, s.Name)
		return nil
	})
}

func cmdServiceLs(args []string, stdout io.Writer) error {
	fs := newFlags("service ls")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		ss, err := c.Services(ctx)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, ss)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tNETWORK\tVIP\tADDRESS\tENDPOINTS\tSOURCE\tERROR")
		for _, s := range ss {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Network, yesNo(s.VIP), orDash(s.Address), s.Endpoints, s.Source, s.Error)
		}
		return tw.Flush()
	})
}

func cmdServiceRm(args []string, stdout io.Writer) error {
	fs := newFlags("service rm")
	cf := addClientFlags(fs)
	network := fs.String("network", "", "network of the service (required)")
	name, err := parseName(fs, args)
	if err != nil {
		return err
	}
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		if err := c.RemoveService(ctx, api.ServiceRef{Network: *network, Name: name}); err != nil {
			return err
		}
		if !*cf.json {
			fmt.Fprintln(stdout, name)
		}
		return nil
	})
}
