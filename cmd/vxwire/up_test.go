package main

import (
	"errors"
	"log/slog"
	"os"
	"syscall"
	"testing"

	"github.com/vxwire/vxwire/tunnel"
)

// TestServeExitsOnCrash checks the daemon's main loop: HUP reloads, a
// crash of an engine goroutine ends it with that crash, which run turns
// into exit status 1, and TERM ends it cleanly.
func TestServeExitsOnCrash(t *testing.T) {
	l := slog.New(slog.DiscardHandler)
	sigs := make(chan os.Signal, 2)
	died := make(chan error, 1)
	reloads := 0
	sigs <- syscall.SIGHUP
	crash := &tunnel.CrashError{Goroutine: "read underlay", Panic: "boom"}
	// The crash comes while the daemon runs on after the reload.
	err := serve(sigs, died, func() { reloads++; died <- crash }, l)
	if !errors.Is(err, crash) {
		t.Fatalf("serve returned %v, want the crash", err)
	}
	if reloads != 1 {
		t.Errorf("%d reloads, want 1", reloads)
	}
	if code := exitCode(err, discard{}); code != exitFail || exitFail != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	sigs <- syscall.SIGTERM
	if err := serve(sigs, make(chan error), func() {}, l); err != nil {
		t.Fatalf("serve after TERM: %v", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
