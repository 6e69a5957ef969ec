package tests

// OCI runtime hooks with the real runtimes: runc and crun start busybox
// containers whose config.json calls `vxwire oci-hook` at createRuntime
// and poststop.
//
//   PFX-h1 (vxwire, blue)                        PFX-h2 (vxwire, blue)
//   PFX-u1 198.18.0.1 ========= veth ========= PFX-u2 198.18.0.2
//     runc/crun run PFX-c1                         runc/crun run PFX-c2
//     └─ netns made by the runtime                 └─ netns made by the runtime
//        eth0 = TAP (hostname c1)  ~~ VXLAN 256 ~~    eth0 = TAP (hostname c2)
//
// The runtime runs under `nsenter --net=PFX-hN`, so the namespace it makes
// for the container and the hook it calls belong to that host. It does not
// run under `ip netns exec`: that remounts /sys and so hides the cgroup
// file systems, and runc then cannot create the container's cgroup.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ociContainer is one container of runc or crun, on one host.
type ociContainer struct {
	e        *env
	h        *host
	runtime  string // "runc" or "crun"
	stateDir string // --root of the runtime
	id       string // container id: PFX + name
	name     string // hostname, its name in DNS
	bundle   string
}

// ociContainer writes a bundle for a busybox container called name on h
// that sleeps, with the vxwire hooks pointing at h's daemon, the
// annotation vxwire.network=blue, CAP_NET_RAW and CAP_NET_ADMIN.
func (e *env) ociContainer(h *host, runtime, name string) *ociContainer {
	e.t.Helper()
	c := &ociContainer{e: e, h: h, runtime: runtime, name: name, id: e.prefix + name,
		stateDir: filepath.Join(e.dir, runtime+"-state"), bundle: filepath.Join(e.dir, "bundle-"+name)}
	if err := os.MkdirAll(c.bundle, 0o755); err != nil {
		e.t.Fatal(err)
	}
	rootfs := e.busyboxRootfs("rootfs-" + name)
	e.must("runc", "spec", "--bundle", c.bundle)
	e.editSpec(c.bundle, func(spec map[string]any) {
		specProcess(spec, []string{"sleep", "120"}, "CAP_NET_RAW", "CAP_NET_ADMIN")
		spec["hostname"] = name
		spec["root"] = map[string]any{"path": rootfs, "readonly": false}
		spec["annotations"] = map[string]string{"vxwire.network": blue.name}
		hook := func(stage string) []any {
			return []any{map[string]any{
				"path":    vxwireBin,
				"args":    []string{"vxwire", "oci-hook", "--socket", e.socket(h), stage},
				"timeout": 60,
			}}
		}
		spec["hooks"] = map[string]any{"createRuntime": hook("createRuntime"), "poststop": hook("poststop")}
	})
	return c
}

// editSpec rewrites the OCI runtime spec of bundle, its config.json,
// through edit.
func (e *env) editSpec(bundle string, edit func(spec map[string]any)) {
	e.t.Helper()
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		e.t.Fatal(err)
	}
	edit(spec)
	if b, err = json.MarshalIndent(spec, "", "  "); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// specProcess makes the spec's process run args without a terminal, with
// caps added to its bounding, effective and permitted sets.
func specProcess(spec map[string]any, args []string, caps ...string) {
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	sets := proc["capabilities"].(map[string]any)
	for _, set := range []string{"bounding", "effective", "permitted"} {
		l, _ := sets[set].([]any)
		for _, c := range caps {
			l = append(l, c)
		}
		sets[set] = l
	}
}

// readOnlyResolvConf bind-mounts a file of the test read-only over the
// container's /etc/resolv.conf and returns the file's content.
func (c *ociContainer) readOnlyResolvConf() string {
	c.e.t.Helper()
	const content = "nameserver 192.0.2.53\n"
	src := c.e.file("resolv-"+c.name+".conf", content)
	c.e.editSpec(c.bundle, func(spec map[string]any) {
		mounts, _ := spec["mounts"].([]any)
		spec["mounts"] = append(mounts, map[string]any{"destination": "/etc/resolv.conf", "type": "bind",
			"source": src, "options": []string{"bind", "ro"}})
	})
	return content
}

// hybridControllers is the file through which crun sees the cgroup v2
// part of a hybrid hierarchy.
const hybridControllers = "/sys/fs/cgroup/unified/cgroup.controllers"

// cmd runs the runtime with args in h's network namespace. On a hybrid
// cgroup hierarchy, which crun refuses, crun runs in a private mount
// namespace that hides the v2 controllers.
func (c *ociContainer) cmd(timeout time.Duration, args ...string) (string, error) {
	args = append([]string{"--root", c.stateDir}, args...)
	nsenter := []string{"--net=" + c.h.path()}
	if _, err := os.Stat(hybridControllers); err == nil && c.runtime == "crun" {
		script := "mount --bind /dev/null " + hybridControllers + " && exec crun \"$@\""
		return c.e.runLogged(timeout, nil, "nsenter", append(nsenter, append([]string{"unshare", "-m", "--propagation", "private",
			"sh", "-c", script, "crun"}, args...)...)...)
	}
	return c.e.runLogged(timeout, nil, "nsenter", append(nsenter, append([]string{c.runtime}, args...)...)...)
}

// start runs the container detached. Cleanup deletes it (by then the
// poststop hook may fail if the daemon is gone; that is not checked).
func (c *ociContainer) start() {
	c.e.t.Helper()
	c.e.t.Cleanup(func() { _, _ = c.cmd(cmdTimeout, "delete", "--force", c.id) })
	if out, err := c.cmd(cmdTimeout, "run", "--detach", "--bundle", c.bundle, c.id); err != nil {
		c.e.t.Fatalf("%s run %s: %v\n%s", c.runtime, c.id, err, out)
	}
}

// exec runs a command inside the container.
func (c *ociContainer) exec(args ...string) (string, error) {
	return c.cmd(cmdTimeout, append([]string{"exec", c.id}, args...)...)
}

// stop kills the container and deletes it, which runs the poststop hook.
func (c *ociContainer) stop() {
	c.e.t.Helper()
	if out, err := c.cmd(cmdTimeout, "kill", c.id, "KILL"); err != nil {
		c.e.t.Fatalf("%s kill: %v\n%s", c.runtime, err, out)
	}
	c.e.eventually(10*time.Second, c.id+" stopped", func() error {
		out, err := c.cmd(cmdTimeout, "state", c.id)
		if err != nil {
			return err
		}
		if !strings.Contains(out, `"stopped"`) {
			return fmt.Errorf("state: %s", out)
		}
		return nil
	})
	if out, err := c.cmd(cmdTimeout, "delete", c.id); err != nil {
		c.e.t.Fatalf("%s delete: %v\n%s", c.runtime, err, out)
	}
}

func TestOCIHookRunc(t *testing.T) { testOCIHook(t, "runc") }

func TestOCIHookCrun(t *testing.T) { testOCIHook(t, "crun") }

func testOCIHook(t *testing.T, runtime string) {
	e := newEnv(t, runtime, "nsenter", "unshare")
	t0 := time.Now()
	h1, h2, _, _ := e.runtimeHosts()
	c1 := e.ociContainer(h1, runtime, "c1")
	c2 := e.ociContainer(h2, runtime, "c2")
	t1 := time.Now()
	c1.start()
	c2.start()
	t.Logf("%s: hosts up in %v, containers started in %v", runtime, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))

	for _, c := range []*ociContainer{c1, c2} {
		ep, ok, err := e.apiEndpoint(c.h, c.name)
		switch {
		case err != nil:
			t.Fatal(err)
		case !ok:
			t.Fatalf("%s does not list endpoint %s", c.h.id, c.name)
		case ep.ContainerID != c.id || !strings.HasPrefix(ep.NetNS, "/proc/") || ep.Source != "api":
			t.Errorf("endpoint %s: %+v", c.name, ep)
		}
		resolv, err := c.exec("cat", "/etc/resolv.conf")
		if err != nil || !strings.Contains(resolv, "nameserver "+blue.gateway) {
			t.Errorf("%s resolv.conf: %v\n%s", c.name, err, resolv)
		}
	}
	t2 := time.Now()
	for _, p := range [][2]*ociContainer{{c1, c2}, {c2, c1}} {
		e.eventually(20*time.Second, p[0].name+" pings "+p[1].name+" by name", func() error {
			_, err := p[0].exec("ping", "-c", "1", "-W", "1", p[1].name)
			return err
		})
	}
	t.Logf("%s: both ping by name across hosts after %v", runtime, time.Since(t2).Round(time.Millisecond))

	t3 := time.Now()
	c1.stop()
	e.waitDetached(h1, "c1")
	t.Logf("%s: c1 deleted and detached on h1 in %v", runtime, time.Since(t3).Round(time.Millisecond))
	e.eventually(20*time.Second, "c1 no longer resolves on h2", func() error {
		out, _ := c2.exec("nslookup", "c1", blue.gateway)
		if !strings.Contains(out, "NXDOMAIN") {
			return fmt.Errorf("c1 still resolves on h2:\n%s", out)
		}
		return nil
	})
	t.Logf("%s: c1 gone from h2's DNS %v after delete", runtime, time.Since(t3).Round(time.Millisecond))
	c2.stop()
	e.waitDetached(h2, "c2")

	// A read-only /etc/resolv.conf does not fail the hook: the container
	// is attached and keeps its resolver.
	c3 := e.ociContainer(h1, runtime, "c3")
	want := c3.readOnlyResolvConf()
	c3.start()
	if _, ok, err := e.apiEndpoint(h1, "c3"); err != nil || !ok {
		t.Fatalf("c3 with a read-only resolv.conf is not attached: %v, %v", ok, err)
	}
	if got, err := c3.exec("cat", "/etc/resolv.conf"); err != nil || got != want {
		t.Errorf("c3 resolv.conf = %q, %v; want the read-only file's %q", got, err, want)
	}
	c3.stop()
	e.waitDetached(h1, "c3")
	t.Logf("%s: total %v", runtime, time.Since(t0).Round(time.Millisecond))
}
