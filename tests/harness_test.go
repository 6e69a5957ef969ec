package tests

// The harness: building the binary, the per-test environment, bounded
// commands, polling, and network namespaces. Topologies (hosts, containers,
// kernel VXLAN) are in topo_test.go, the daemon in daemon_test.go, traffic
// in traffic_test.go and packet capture in capture_test.go.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

var (
	// vxwireBin is the binary under test, built by TestMain.
	vxwireBin string
	// skipBinary says why vxwireBin is unusable; tests that need the
	// binary skip with it.
	skipBinary string
)

// cmdTimeout bounds every command a test runs unless it says otherwise.
const cmdTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	if spec := os.Getenv(attackerEnv); spec != "" {
		// This binary was started as a gossip attacker (see
		// adversary_gossip_test.go), not to run tests.
		os.Exit(runGossipAttacker(spec))
	}
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vxwire-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	vxwireBin, skipBinary, err = buildBinary(dir)
	if err != nil {
		// Root without -short is a real end-to-end run: a binary that
		// cannot be built fails it instead of skipping every test.
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	return m.Run()
}

// buildBinary builds ./cmd/vxwire into dir. It returns why the tests that
// need the binary skip when they cannot run here (-short, not root), or an
// error when they should run but the binary cannot be built.
func buildBinary(dir string) (bin, why string, err error) {
	switch {
	case testing.Short():
		return "", "end-to-end test skipped in -short mode", nil
	case os.Geteuid() != 0:
		return "", "end-to-end test needs root (network namespaces, veth, TAP); run it as root, as CI does", nil
	}
	if p := os.Getenv("VXWIRE_BIN"); p != "" {
		return p, "", nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", fmt.Errorf("cannot find the module root to build the vxwire binary: %w", err)
	}
	bin = filepath.Join(dir, "vxwire")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/vxwire")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("cannot build the vxwire binary (go build ./cmd/vxwire: %w):\n%s", err, out)
	}
	return bin, "", nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// env is one test's world: a unique name prefix, a temporary directory, and
// everything created through it, removed in t.Cleanup.
type env struct {
	t      *testing.T
	prefix string // "vx" + 4 hex digits + "-": names of namespaces and links
	dir    string
	secret string // the cluster secret file, once clusterSecret made it
}

// newEnv returns the environment of a test that runs the vxwire binary. It
// skips the test when not root, when the binary could not be built, or
// when one of tools is not installed.
func newEnv(t *testing.T, tools ...string) *env {
	t.Helper()
	if skipBinary != "" {
		t.Skip(skipBinary)
	}
	return newNetEnv(t, tools...)
}

// newNetEnv is newEnv for tests that need namespaces but not the binary.
func newNetEnv(t *testing.T, tools ...string) *env {
	t.Helper()
	switch {
	case testing.Short():
		t.Skip("end-to-end test skipped in -short mode")
	case os.Geteuid() != 0:
		t.Skip("end-to-end test needs root (network namespaces, veth, TAP); run it as root, as CI does")
	}
	for _, tool := range append([]string{"ip", "ping", "timeout"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("end-to-end test needs %s (Debian package %s)", tool, debianPackage(tool))
		}
	}
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, prefix: "vx" + hex.EncodeToString(b[:]) + "-", dir: t.TempDir()}
}

func debianPackage(tool string) string {
	switch tool {
	case "ip", "bridge":
		return "iproute2"
	case "ping":
		return "iputils-ping"
	case "timeout":
		return "coreutils"
	case "wg":
		return "wireguard-tools"
	}
	return tool
}

// command runs name with args, bounded by timeout, and returns its combined
// output. The error includes the command line and the output.
func command(timeout time.Duration, name string, args ...string) (string, error) {
	stdout, stderr, err := run(timeout, name, args...)
	return stdout + stderr, err
}

// errTimedOut is returned (wrapped) by run when the command outlived its
// bound and was killed.
var errTimedOut = errors.New("timed out")

// run runs name with args, bounded by timeout, and returns its standard
// output and standard error apart. The error includes the command line and
// both outputs.
func run(timeout time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var so, se strings.Builder
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %v", errTimedOut, timeout)
	}
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, so.String(), se.String())
	}
	return so.String(), se.String(), err
}

// must runs a command like command and fails the test if it fails.
func (e *env) must(name string, args ...string) string {
	e.t.Helper()
	out, err := command(cmdTimeout, name, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// in runs a command inside namespace n and returns its output.
func (e *env) in(n *netns, args ...string) (string, error) {
	return command(cmdTimeout, "ip", append([]string{"netns", "exec", n.name}, args...)...)
}

// mustIn runs a command inside namespace n and fails the test if it fails.
func (e *env) mustIn(n *netns, args ...string) string {
	e.t.Helper()
	out, err := e.in(n, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// errPermanent marks an error that ends an eventually loop at once.
type errPermanent struct{ err error }

func (p errPermanent) Error() string { return p.err.Error() }

// permanent wraps err so that eventually stops polling and fails.
func permanent(err error) error { return errPermanent{err} }

// eventually calls f until it returns nil, fails the test when timeout
// passes or f returns a permanent error. what names the awaited condition.
func (e *env) eventually(timeout time.Duration, what string, f func() error) {
	e.t.Helper()
	if err := poll(timeout, f); err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

// poll calls f until it returns nil, a permanent error, or timeout passes,
// and returns the last error.
func poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 20 * time.Millisecond
	for {
		err := f()
		var p errPermanent
		switch {
		case err == nil:
			return nil
		case errors.As(err, &p):
			return p.err
		case time.Now().After(deadline):
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// netns is a named network namespace, /var/run/netns/NAME.
type netns struct {
	name string
}

func (n *netns) path() string { return "/var/run/netns/" + n.name }

// newNS creates the namespace prefix+short with lo up and IPv6 off (so that
// captures and counters see only the test's traffic), and deletes it in
// cleanup. Deleting it removes every link inside it.
func (e *env) newNS(short string) *netns {
	e.t.Helper()
	n := &netns{name: e.prefix + short}
	e.must("ip", "netns", "add", n.name)
	e.t.Cleanup(func() {
		if _, err := command(cmdTimeout, "ip", "netns", "del", n.name); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	e.must("ip", "-n", n.name, "link", "set", "lo", "up")
	e.sysctl(n, "net/ipv6/conf/all/disable_ipv6", "1")
	e.sysctl(n, "net/ipv6/conf/default/disable_ipv6", "1")
	return n
}

// sysctl writes value to /proc/sys/KEY inside namespace n.
func (e *env) sysctl(n *netns, key, value string) {
	e.t.Helper()
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
	if err != nil {
		e.t.Fatalf("sysctl %s=%s in %s: %v", key, value, n.name, err)
	}
}

// file writes content to name in the test's directory and returns its path.
// It replaces an existing file atomically, so a daemon that reads it at any
// moment sees the old or the new content, never a mix.
func (e *env) file(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p+".new", []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		e.t.Fatal(err)
	}
	return p
}
