package tests

// podman 4.3 with its CNI backend and with hooks.d, no registry: both
// containers run from a busybox root file system (--rootfs).
//
//   PFX-h1 (vxwire, blue)                        PFX-h2 (vxwire, blue)
//   PFX-u1 198.18.0.1 ========= veth ========= PFX-u2 198.18.0.2
//     podman run --network PFX-blue pc1            podman run --network none
//     └─ CNI plugin vxwire: eth0 = TAP                --annotation vxwire.network=blue pc2
//                                                   └─ hooks.d vxwire.json: eth0 = TAP
//
// podman runs under `nsenter --net=PFX-hN` (not `ip netns exec`, which
// hides the cgroup file systems from runc), with containers.conf and
// storage.conf of the test (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF):
// nothing under /etc changes.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podman runs podman with the test's configuration.
type podman struct {
	e        *env
	env      []string
	hooksDir string
}

func (e *env) podman() *podman {
	e.t.Helper()
	dir := filepath.Join(e.dir, "podman")
	for _, d := range []string{"tmp", "run", "graph", "netconf", "hooks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[network]
network_backend = "cni"
cni_plugin_dirs = [%q, "/usr/lib/cni"]
network_config_dir = %q

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
tmp_dir = %q
`, e.pluginDir(), filepath.Join(dir, "netconf"), filepath.Join(dir, "tmp"))
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(dir, "run"), filepath.Join(dir, "graph"))
	confPath, storagePath := filepath.Join(dir, "containers.conf"), filepath.Join(dir, "storage.conf")
	for p, s := range map[string]string{confPath: conf, storagePath: storage} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return &podman{e: e, env: []string{"CONTAINERS_CONF=" + confPath, "CONTAINERS_STORAGE_CONF=" + storagePath},
		hooksDir: filepath.Join(dir, "hooks")}
}

// run runs podman with args in h's network namespace.
func (p *podman) run(h *host, args ...string) (string, error) {
	return p.e.runLogged(time.Minute, p.env, "nsenter", append([]string{"--net=" + h.path(), "podman"}, args...)...)
}

// network writes the example conflist as network name, for h's socket.
func (p *podman) network(h *host, name string) {
	p.e.t.Helper()
	conf := p.e.exampleConflist(name, p.e.socket(h), "1.0.0")
	dir := filepath.Join(p.e.dir, "podman", "netconf")
	if err := os.WriteFile(filepath.Join(dir, name+".conflist"), []byte(conf), 0o644); err != nil {
		p.e.t.Fatal(err)
	}
}

// hook writes examples/hooks.d/vxwire.json, calling the binary under test
// with h's socket.
func (p *podman) hook(h *host) {
	p.e.t.Helper()
	root, err := moduleRoot()
	if err != nil {
		p.e.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", "hooks.d", "vxwire.json"))
	if err != nil {
		p.e.t.Fatal(err)
	}
	s := string(b)
	for old, repl := range map[string]string{
		`"path": "/usr/local/bin/vxwire"`: fmt.Sprintf(`"path": %q`, vxwireBin),
		`"args": ["vxwire", "oci-hook"]`:  fmt.Sprintf(`"args": ["vxwire", "oci-hook", "--socket", %q]`, p.e.socket(h)),
	} {
		if !strings.Contains(s, old) {
			p.e.t.Fatalf("examples/hooks.d/vxwire.json lacks %s", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	if err := os.WriteFile(filepath.Join(p.hooksDir, "vxwire.json"), []byte(s), 0o644); err != nil {
		p.e.t.Fatal(err)
	}
}

// start runs a detached container called name on h; cleanup removes it.
func (p *podman) start(h *host, name string, args ...string) {
	p.e.t.Helper()
	p.e.t.Cleanup(func() { _, _ = p.run(h, "rm", "--force", "--time", "0", name) })
	args = append(append([]string{"--hooks-dir", p.hooksDir, "run", "--detach", "--name", name}, args...),
		"--rootfs", p.e.busyboxRootfs("rootfs-"+name), "sleep", "120")
	if out, err := p.run(h, args...); err != nil {
		p.e.t.Fatalf("podman run %s: %v\n%s", name, err, out)
	}
}

func TestPodman(t *testing.T) {
	e := newEnv(t, "podman", "runc", "nsenter")
	pm := e.podman()
	t0 := time.Now()
	h1, h2, _, _ := e.runtimeHosts()
	if out, err := pm.run(h1, "info", "--format", "{{.Host.NetworkBackend}}"); err != nil {
		t.Fatalf("podman info with the test's configuration failed: %v\n%s", err, out)
	} else if strings.TrimSpace(out) != "cni" {
		t.Fatalf("podman network backend %q, want cni", strings.TrimSpace(out))
	}
	netName := e.prefix + "blue"
	pm.network(h1, netName)
	pm.hook(h2)

	t1 := time.Now()
	pm.start(h1, "pc1", "--network", netName)
	pm.start(h2, "pc2", "--network", "none", "--annotation", "vxwire.network="+blue.name, "--hostname", "pc2")
	t.Logf("podman: hosts up in %v, two containers started in %v", t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))

	ep1, ok, err := e.apiEndpoint(h1, "pc1")
	if err != nil || !ok {
		t.Fatalf("h1 endpoint pc1: %v, %v", ok, err)
	}
	if !strings.HasPrefix(ep1.NetNS, "/run/netns/") && !strings.HasPrefix(ep1.NetNS, "/var/run/netns/") {
		t.Errorf("pc1 netns %q: want podman's /run/netns/cni-…", ep1.NetNS)
	}
	addr, _ := pm.run(h1, "exec", "pc1", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
	if !strings.Contains(addr, ep1.Address) {
		t.Errorf("pc1 eth0: %s, want %s", addr, ep1.Address)
	}
	resolv, _ := pm.run(h1, "exec", "pc1", "cat", "/etc/resolv.conf")
	if !strings.Contains(resolv, "nameserver "+blue.gateway) {
		t.Errorf("pc1 resolv.conf lacks the gateway:\n%s", resolv)
	}
	if _, ok, err := e.apiEndpoint(h2, "pc2"); err != nil || !ok {
		t.Fatalf("h2 endpoint pc2 (hooks.d): %v, %v", ok, err)
	}

	t2 := time.Now()
	for _, c := range []struct {
		h        *host
		from, to string
	}{{h1, "pc1", "pc2"}, {h2, "pc2", "pc1"}} {
		e.eventually(20*time.Second, c.from+" pings "+c.to+" by name", func() error {
			_, err := pm.run(c.h, "exec", c.from, "ping", "-c", "1", "-W", "1", c.to)
			return err
		})
	}
	t.Logf("podman: ping by name both ways after %v", time.Since(t2).Round(time.Millisecond))

	t3 := time.Now()
	if out, err := pm.run(h1, "rm", "--force", "--time", "0", "pc1"); err != nil {
		t.Fatalf("podman rm pc1: %v\n%s", err, out)
	}
	e.waitDetached(h1, "pc1")
	if out, err := pm.run(h2, "rm", "--force", "--time", "0", "pc2"); err != nil {
		t.Fatalf("podman rm pc2: %v\n%s", err, out)
	}
	e.waitDetached(h2, "pc2")
	t.Logf("podman: both removed and detached in %v; total %v", time.Since(t3).Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}
