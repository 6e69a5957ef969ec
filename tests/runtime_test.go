package tests

// Helpers of the container-runtime suites (oci_test.go, cni_test.go,
// podman_test.go): two hosts running vxwire with network blue, a busybox
// root file system, commands whose output goes to a file, and cnitool.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// runtimeHosts creates hosts h1 and h2, each running vxwire with network
// blue and the other as its peer, and waits until both daemons answer.
func (e *env) runtimeHosts() (h1, h2 *host, d1, d2 *daemon) {
	e.t.Helper()
	h1, h2 = e.twoHosts()
	d1 = e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue}}))
	d2 = e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue}}))
	d1.waitReady()
	d2.waitReady()
	return h1, h2, d1, d2
}

// busyboxLinks are the applets the root file system links to busybox.
var busyboxLinks = []string{"sh", "ip", "ping", "nslookup", "wget", "nc", "sleep", "cat"}

// busyboxRootfs builds a root file system in the test's directory: bin/
// with /bin/busybox and its links, and empty etc/, proc/, sys/, dev/ and
// tmp/. It returns the absolute path.
func (e *env) busyboxRootfs(name string) string {
	e.t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		e.t.Skip("runtime test needs /bin/busybox (Debian package busybox-static)")
	}
	root := filepath.Join(e.dir, name)
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for _, l := range busyboxLinks {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return root
}

// runLogged runs name with args, bounded by timeout, with standard input
// from /dev/null and both outputs into a file, and returns what it
// wrote. Unlike run, it does not wait for pipes to close, so it suits
// commands that leave a detached child holding their output (runc run
// -d).
func (e *env) runLogged(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	f, err := os.CreateTemp(e.dir, "cmd-*.log")
	if err != nil {
		return "", err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w after %v", errTimedOut, timeout)
	}
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return "", serr
	}
	out, _ := io.ReadAll(f)
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), err
}

// apiEndpoints lists h's endpoints through the API.
func (e *env) apiEndpoints(h *host) ([]api.Endpoint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return api.NewClient(e.socket(h)).Endpoints(ctx)
}

// apiEndpoint returns h's endpoint called name on network blue.
func (e *env) apiEndpoint(h *host, name string) (api.Endpoint, bool, error) {
	eps, err := e.apiEndpoints(h)
	if err != nil {
		return api.Endpoint{}, false, err
	}
	i := slices.IndexFunc(eps, func(ep api.Endpoint) bool { return ep.Network == blue.name && ep.Name == name })
	if i < 0 {
		return api.Endpoint{}, false, nil
	}
	return eps[i], true, nil
}

// waitDetached polls until h lists no endpoint called name.
func (e *env) waitDetached(h *host, name string) {
	e.t.Helper()
	e.eventually(20*time.Second, fmt.Sprintf("endpoint %s gone from %s", name, h.id), func() error {
		_, ok, err := e.apiEndpoint(h, name)
		switch {
		case err != nil:
			return err
		case ok:
			return fmt.Errorf("%s still lists %s", h.id, name)
		}
		return nil
	})
}

// cnitoolVersion is the cnitool the CNI and podman suites use.
const cnitoolVersion = "v1.3.1"

// cnitool returns the path of cnitool: on PATH, else in GOPATH/bin, else
// installed with go install into the user's cache directory. It skips the
// test with the reason when it cannot be had.
func (e *env) cnitool() string {
	e.t.Helper()
	if p, err := exec.LookPath("cnitool"); err == nil {
		return p
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	gobin := filepath.Join(cache, "vxwire-e2e", "cnitool-"+cnitoolVersion)
	for _, d := range append(dirs, gobin) {
		if p := filepath.Join(d, "cnitool"); isExecutable(p) {
			return p
		}
	}
	out, err := e.runLogged(3*time.Minute, []string{"GOBIN=" + gobin, "GOFLAGS=-mod=mod"},
		"go", "install", "github.com/containernetworking/cni/cnitool@"+cnitoolVersion)
	if err != nil {
		e.t.Skipf("cnitool is not installed and go install failed (install it with GOBIN=DIR go install github.com/containernetworking/cni/cnitool@%s): %v\n%s", cnitoolVersion, err, out)
	}
	return filepath.Join(gobin, "cnitool")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// pluginDir returns a directory holding the vxwire binary as the CNI
// plugin "vxwire".
func (e *env) pluginDir() string {
	e.t.Helper()
	dir := filepath.Join(e.dir, "cni-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(dir, "vxwire")
	if err := os.Symlink(vxwireBin, p); err != nil && !errors.Is(err, os.ErrExist) {
		e.t.Fatal(err)
	}
	return dir
}

// exampleConflist returns examples/cni/vxwire.conflist with the network
// name, the socket and the CNI version replaced.
func (e *env) exampleConflist(name, socket, cniVersion string) string {
	e.t.Helper()
	root, err := moduleRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "cni", "vxwire.conflist"))
	if err != nil {
		e.t.Fatal(err)
	}
	s := string(b)
	for old, repl := range map[string]string{
		`"name": "vxwire-blue"`:               fmt.Sprintf("%q: %q", "name", name),
		`"socket": "/run/vxwire/vxwire.sock"`: fmt.Sprintf("%q: %q", "socket", socket),
		`"cniVersion": "1.0.0"`:               fmt.Sprintf("%q: %q", "cniVersion", cniVersion),
	} {
		if !strings.Contains(s, old) {
			e.t.Fatalf("examples/cni/vxwire.conflist lacks %s", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	return s
}
