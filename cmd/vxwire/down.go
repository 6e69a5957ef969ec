package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/tunnel"
)

// cmdDown removes the TAPs a stopped daemon kept in its containers. A
// daemon stopped with SIGTERM (or one that crashed) leaves every
// container's interface in place for the next `vxwire up` (live restore);
// down is how an operator takes them out, for example before removing
// vxwire from the host. It refuses while a daemon answers on the socket:
// detach endpoints from a running daemon instead.
func cmdDown(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("down")
	file := fs.String("c", "", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: down needs -c FILE", errUsage)
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := api.NewClient(cfg.Host.APISocket).Status(ctx); err == nil {
		return fmt.Errorf("a daemon is running on %s: stop it first, or detach its endpoints", cfg.Host.APISocket)
	}
	l, err := newLogger(stderr, "warn")
	if err != nil {
		return err
	}
	n, err := tunnel.RemoveKept(cfg.Host.StateDir, newNSHelper(), l)
	fmt.Fprintf(stdout, "removed %d container interfaces kept in %s\n", n, cfg.Host.StateDir)
	return err
}
