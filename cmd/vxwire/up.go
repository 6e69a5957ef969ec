package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/dockerplugin"
	"github.com/vxwire/vxwire/internal/metrics"
	"github.com/vxwire/vxwire/tunnel"
)

func cmdConfigCheck(args []string, stdout io.Writer) error {
	fs := newFlags("config check")
	file := fs.String("c", "", "config file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: config check needs -c FILE", errUsage)
	}
	if _, err := config.Load(*file); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", *file)
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

func cmdUp(args []string, stderr io.Writer) error {
	fs := newFlags("up")
	file := fs.String("c", "", "config file")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: up needs -c FILE", errUsage)
	}
	l, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*file)
	if err != nil {
		return err
	}
	setProcs(cfg.Host.Procs, l)
	// Signals are subscribed before anything is created, so a TERM that
	// arrives during start-up still removes what was made.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	eng, err := tunnel.New(cfg, tunnel.Options{Logger: l, NSHelper: newNSHelper()})
	if err != nil {
		return err
	}
	defer stopWithin(eng, stopTimeout, l)
	ln, err := api.Listen(cfg.Host.APISocket, cfg.Host.APIGID)
	if err != nil {
		return err
	}
	srv := api.Serve(ln, eng, eng.Reporter().With("component", "api"))
	defer func() {
		shutdown(srv)
		os.Remove(cfg.Host.APISocket)
	}()
	if cfg.Host.DockerPlugin != "" {
		dln, err := dockerplugin.Listen(cfg.Host.DockerPlugin)
		if err != nil {
			return err
		}
		plug := dockerplugin.New(eng, nil, l.With("component", "docker"))
		if err := plug.Restore(filepath.Join(cfg.Host.StateDir, dockerplugin.StateFile)); err != nil {
			l.Error("docker networks and endpoints of the previous run not all restored", "error", err)
		}
		dsrv := dockerplugin.Serve(dln, plug, eng.Reporter().With("component", "docker"))
		defer func() {
			shutdown(dsrv)
			os.Remove(cfg.Host.DockerPlugin)
		}()
		l.Info("serving the docker plugin", "socket", cfg.Host.DockerPlugin)
	}
	if cfg.Host.Metrics.IsValid() {
		msrv, err := metrics.Serve(cfg.Host.Metrics, metrics.Handler(eng), eng.Reporter().With("component", "metrics"))
		if err != nil {
			return err
		}
		defer shutdown(msrv)
		l.Info("serving metrics", "address", msrv.Addr)
	}
	eng.Start()
	l.Info("vxwire up", "host", cfg.Host.Name, "address", cfg.Host.Address.String(), "port", cfg.Host.Port,
		"networks", len(cfg.Networks), "peers", len(cfg.Peers), "endpoints", len(cfg.Endpoints), "api", cfg.Host.APISocket)
	return serve(sigs, eng.Died(), func() { reload(eng, *file, l) }, l)
}

// serve handles signals until TERM or INT (it returns nil) or until one
// of the engine's goroutines crashes (it returns the crash, so the daemon
// exits non-zero instead of running on half dead).
func serve(sigs <-chan os.Signal, died <-chan error, reload func(), l *slog.Logger) error {
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				l.Info("stopping", "signal", sig.String())
				return nil
			}
			reload()
		case err := <-died:
			return err
		}
	}
}

// stopTimeout bounds how long the daemon waits for the engine to stop.
const stopTimeout = 10 * time.Second

// stopWithin stops eng, giving up after d: after a crash the engine's
// lock may be held by the goroutine that died, and exiting beats hanging.
func stopWithin(eng *tunnel.Engine, d time.Duration, l *slog.Logger) {
	done := make(chan struct{})
	go func() {
		eng.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		l.Error("engine did not stop in time; exiting anyway", "timeout", d.String())
	}
}

// shutdown stops srv, giving requests in flight two seconds.
func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

// reload re-reads the file and applies it; a file that fails to load or
// apply is logged and the running config stays.
func reload(eng *tunnel.Engine, file string, l *slog.Logger) {
	cfg, err := config.Load(file)
	if err != nil {
		l.Error("reload refused, keeping the running config", "error", err)
		return
	}
	if err := eng.Reload(cfg); err != nil {
		l.Error("reload refused, keeping the running config", "error", err)
		return
	}
	l.Info("reloaded", "file", file, "networks", len(cfg.Networks), "peers", len(cfg.Peers), "endpoints", len(cfg.Endpoints))
}
