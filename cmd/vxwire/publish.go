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

func cmdPublish(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("vxwire publish add|ls|rm (see vxwire help)")
	}
	switch args[0] {
	case "add":
		return cmdPublishAdd(args[1:], stdout)
	case "ls", "list":
		return cmdPublishLs(args[1:], stdout)
	case "rm", "remove":
		return cmdPublishRm(args[1:], stdout)
	}
	return usageError("unknown command \"publish %s\" (see vxwire help)", args[0])
}

// parsePort parses a port argument of cmd with the config rules.
func parsePort(cmd, s string) (uint16, error) {
	p, err := config.ParsePort(s)
	if err != nil {
		return 0, usageError("%s: %v", cmd, err)
	}
	return p, nil
}

func cmdPublishAdd(args []string, stdout io.Writer) error {
	fs := newFlags("publish add")
	cf := addClientFlags(fs)
	network := fs.String("network", "", "network of the target endpoints (required)")
	proto := fs.String("proto", config.ProtoTCP, "tcp or udp")
	mode := fs.String("mode", config.ModeIngress, "ingress (every host) or host (hosts running the target)")
	listen := fs.String("listen", "", "host address to listen on (default: the underlay address)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("publish add needs PORT NAME:PORT")
	}
	port, err := parsePort("publish add", pos[0])
	if err != nil {
		return err
	}
	spec := api.PublishSpec{Network: *network, Port: port, Proto: *proto, To: pos[1], Mode: *mode, Listen: *listen}
	// The same rules the daemon applies, so that a typo fails here.
	if _, err := config.NewPublish(spec.Network, spec.Port, spec.Proto, spec.To, spec.Mode, spec.Listen); err != nil {
		return usageError("publish add: %v", err)
	}
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		p, err := c.AddPublish(ctx, spec)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, p)
		}
		fmt.Fprintf(stdout, "%d/%s\n", p.Port, p.Proto)
		return nil
	})
}

func cmdPublishLs(args []string, stdout io.Writer) error {
	fs := newFlags("publish ls")
	cf := addClientFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return cf.call(api.ReadTimeout, func(ctx context.Context, c *api.Client) error {
		ps, err := c.Publishes(ctx)
		if err != nil {
			return err
		}
		if *cf.json {
			return printJSON(stdout, ps)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PORT\tNETWORK\tTO\tMODE\tLISTENING\tTARGETS\tACCEPTED\tACTIVE\tSOURCE\tERROR")
		for _, p := range ps {
			fmt.Fprintf(tw, "%d/%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.Port, p.Proto, p.Network, p.To, p.Mode,
				orDash(p.Address), p.Targets, p.Accepted, p.Active, p.Source, p.Error)
		}
		return tw.Flush()
	})
}

func cmdPublishRm(args []string, stdout io.Writer) error {
	fs := newFlags("publish rm")
	cf := addClientFlags(fs)
	proto := fs.String("proto", config.ProtoTCP, "tcp or udp")
	listen := fs.String("listen", "", "the publish's listen address, if it has one")
	arg, err := parseName(fs, args)
	if err != nil {
		return err
	}
	port, err := parsePort("publish rm", arg)
	if err != nil {
		return err
	}
	return cf.call(api.ChangeTimeout, func(ctx context.Context, c *api.Client) error {
		if err := c.RemovePublish(ctx, api.PublishRef{Proto: *proto, Port: port, Listen: *listen}); err != nil {
			return err
		}
		if !*cf.json {
			fmt.Fprintf(stdout, "%d/%s\n", port, *proto)
		}
		return nil
	})
}
