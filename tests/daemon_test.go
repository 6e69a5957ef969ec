package tests

// Running the vxwire daemon: start it inside a host namespace, read its
// status, signal it, stop it by the pid the test started.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// Bounds for the daemon's life cycle.
const (
	readyTimeout = 30 * time.Second // up until status lists the endpoints
	termTimeout  = 10 * time.Second // SIGTERM until exit, before SIGKILL
)

// daemon is one `vxwire up` process started by the test.
type daemon struct {
	e    *env
	h    *host
	cmd  *exec.Cmd
	log  string        // file holding its stdout and stderr
	done chan struct{} // closed when it has exited
	err  error         // exit status; valid once done is closed
	// exitExpected is set when the test ended the daemon on purpose
	// (SIGKILL) or accepted its exit, so its exit status is no failure.
	exitExpected bool
}

// startDaemon runs `vxwire up -c cfg` inside h's namespace. Cleanup stops
// it, reports a daemon that did not stop cleanly, and prints its log when
// the test failed.
func (e *env) startDaemon(h *host, cfg string) *daemon {
	e.t.Helper()
	return e.startDaemonBin(vxwireBin, h, cfg)
}

// startDaemonBin is startDaemon with the binary at bin.
func (e *env) startDaemonBin(bin string, h *host, cfg string) *daemon {
	e.t.Helper()
	// ip netns exec execs the binary, so cmd.Process is the daemon itself.
	return e.startDaemonCmd(h, "daemon", []string{"ip", "netns", "exec", h.name, bin, "up", "-c", cfg})
}

// startDaemonCmd starts the daemon of h as args, whose process must be
// the daemon itself (each wrapper execs the next), and does the rest of
// startDaemon's work; kind names the daemon in failures and the log.
func (e *env) startDaemonCmd(h *host, kind string, args []string) *daemon {
	e.t.Helper()
	logPath := filepath.Join(e.dir, fmt.Sprintf("%s-daemon-%d.log", h.id, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// If the test binary dies, the daemon must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %s on %s: %v", kind, h.id, err)
	}
	d := &daemon{e: e, h: h, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	e.t.Cleanup(func() {
		if err := d.stop(); err != nil {
			e.t.Errorf("%s %s: %v", kind, h.id, err)
		}
		if e.t.Failed() {
			e.t.Logf("log of %s %s (pid %d):\n%s", kind, h.id, cmd.Process.Pid, tail(d.logText(), 150))
		}
	})
	return d
}

// running reports whether the daemon has not exited yet.
func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.e.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.e.t.Fatalf("signal %v to daemon %s: %v", sig, d.h.id, err)
	}
}

// stop sends SIGTERM and waits termTimeout for the daemon to exit, then
// kills it. It returns nil only if the daemon exited with status 0 after
// SIGTERM. It may be called more than once.
func (d *daemon) stop() error {
	if !d.running() {
		if d.exitExpected {
			return nil
		}
		return exitError(d.err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return exitError(d.err)
	case <-time.After(termTimeout):
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	return fmt.Errorf("did not exit within %v of SIGTERM; killed", termTimeout)
}

func exitError(err error) error {
	if err != nil {
		return fmt.Errorf("exited: %w", err)
	}
	return nil
}

// logText returns what the daemon has logged so far.
func (d *daemon) logText() string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return string(b)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)\n", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// status runs `vxwire status --json` against h's daemon.
func (e *env) status(h *host) (api.Status, error) {
	var st api.Status
	out, _, err := run(10*time.Second, vxwireBin, "status", "--socket", e.socket(h), "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("vxwire status --json: %w\n%s", err, out)
	}
	return st, nil
}

// mustStatus returns the daemon's status or fails the test.
func (e *env) mustStatus(h *host) api.Status {
	e.t.Helper()
	st, err := e.status(h)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitReady polls `vxwire status` until it succeeds and lists every named
// endpoint, and returns that status. It fails at once if the daemon exits.
func (d *daemon) waitReady(endpoints ...string) api.Status {
	d.e.t.Helper()
	var st api.Status
	d.e.eventually(readyTimeout, "daemon "+d.h.id+" ready", func() error {
		if !d.running() {
			return permanent(fmt.Errorf("daemon exited: %v", d.err))
		}
		s, err := d.e.status(d.h)
		if err != nil {
			return err
		}
		if missing := missingEndpoints(s, endpoints); len(missing) > 0 {
			return fmt.Errorf("endpoints %v not listed yet", missing)
		}
		st = s
		return nil
	})
	return st
}

// missingEndpoints returns the names in want that st does not list.
func missingEndpoints(st api.Status, want []string) []string {
	var missing []string
	for _, name := range want {
		if !slices.ContainsFunc(st.Endpoints, func(ep api.EndpointStatus) bool { return ep.Name == name }) {
			missing = append(missing, name)
		}
	}
	return missing
}

// drops returns st's host-wide drop count for reason.
func drops(st api.Status, reason string) uint64 { return st.Counters.Drops[reason] }

// upExit runs `vxwire up -c cfg` in h's namespace, waits up to timeout for
// it to exit (killing it otherwise), and returns its output and exit error;
// the error wraps errTimedOut if it had to be killed.
func (e *env) upExit(h *host, cfg string, timeout time.Duration) (string, error) {
	return command(timeout, "ip", "netns", "exec", h.name, vxwireBin, "up", "-c", cfg)
}
