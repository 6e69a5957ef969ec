package tests

// A rootless podman container joins the overlay: the test user runs the
// laptop's daemon and podman, both without capabilities; podman runs the
// hooks.d hook inside its own user namespace, the hook makes eth0 in the
// container's namespace and passes it to the user's daemon.
//
//   PFX-h1 (root, vxwire)                        PFX-h2 "lap" (user PFX-u)
//   PFX-u1 198.18.0.1/24 ======= veth ======== PFX-u2 198.18.0.2/24
//   c1 10.77.0.10 on blue                        vxwire up (rootless)
//                                                podman run --network none
//                                                  --annotation vxwire.network=blue
//                                                  └─ hook: eth0 = TAP, fd → daemon

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// subIDs gives the user subordinate uids and gids for its user namespaces
// when useradd did not, and restores both files in cleanup.
func (u *testUser) subIDs(e *env) {
	e.t.Helper()
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		old, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			e.t.Fatal(err)
		}
		if strings.Contains("\n"+string(old), "\n"+u.name+":") {
			continue // userdel removes what useradd added
		}
		line := fmt.Sprintf("%s:%d:65536\n", u.name, 300000+u.uid%1000*65536)
		if err := os.WriteFile(f, append(old, line...), 0o644); err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() {
			if err := os.WriteFile(f, old, 0o644); err != nil {
				e.t.Errorf("cleanup: restore %s: %v", f, err)
			}
		})
	}
}

// openTun makes /dev/net/tun usable by everyone (mode 0666, as most
// distributions ship it; these machines have 0600) and restores its mode
// in cleanup.
func (e *env) openTun() {
	e.t.Helper()
	fi, err := os.Stat("/dev/net/tun")
	if err != nil {
		e.t.Skipf("no /dev/net/tun: %v", err)
	}
	mode := fi.Mode().Perm()
	if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if err := os.Chmod("/dev/net/tun", mode); err != nil {
			e.t.Errorf("cleanup: restore /dev/net/tun mode %04o: %v", mode, err)
		}
	})
}

// userPodman is rootless podman for the user: its configuration and
// storage in the user's home, the example hooks.d entry calling the binary
// under test with the socket of the user's daemon, and a busybox root file
// system the user owns.
type userPodman struct {
	u      *testUser
	env    []string
	hooks  string
	rootfs string
}

func (e *env) userPodman(u *testUser) *userPodman {
	e.t.Helper()
	dir := filepath.Join(u.home, "podman")
	for _, d := range []string{"tmp", "run", "graph", "hooks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			e.t.Fatal(err)
		}
	}
	conf := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\n"+
		"[engine]\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\nevents_logger = \"file\"\ntmp_dir = %q\n", filepath.Join(dir, "tmp"))
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(dir, "run"), filepath.Join(dir, "graph"))
	root, err := moduleRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	hook, err := os.ReadFile(filepath.Join(root, "examples", "hooks.d", "vxwire.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	// At poststop podman runs hooks with an empty environment, so the
	// hook is told where the user's daemon listens (README).
	hookText := string(hook)
	for old, repl := range map[string]string{
		`"path": "/usr/local/bin/vxwire"`: fmt.Sprintf(`"path": %q`, vxwireBin),
		`"args": ["vxwire", "oci-hook"]`:  fmt.Sprintf(`"args": ["vxwire", "oci-hook", "--socket", %q]`, filepath.Join(u.runtime, "vxwire", "vxwire.sock")),
	} {
		if !strings.Contains(hookText, old) {
			e.t.Fatalf("examples/hooks.d/vxwire.json lacks %s", old)
		}
		hookText = strings.Replace(hookText, old, repl, 1)
	}
	files := map[string]string{
		"containers.conf":   conf,
		"storage.conf":      storage,
		"hooks/vxwire.json": hookText,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
	rootfs := e.busyboxRootfs("rootless-rootfs")
	for _, tree := range []string{dir, rootfs} {
		if err := chownTree(tree, u.uid, u.gid); err != nil {
			e.t.Fatal(err)
		}
	}
	p := &userPodman{u: u, hooks: filepath.Join(dir, "hooks"), rootfs: rootfs, env: []string{
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
	}}
	// podman keeps a pause process holding its user namespace; stop it
	// by its pid before the user is removed.
	e.t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(dir, "tmp", "pause.pid")) // in tmp_dir
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			if proc, err := os.FindProcess(pid); err == nil {
				proc.Kill()
				waitGone(pid, 5*time.Second)
			}
		}
	})
	return p
}

// waitGone polls until process pid no longer exists, or d passes.
func waitGone(pid int, d time.Duration) {
	_ = poll(d, func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return fmt.Errorf("pid %d still there", pid)
		}
		return nil
	})
}

// chownTree gives every file under root to uid:gid (symbolic links
// themselves).
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// run runs podman as the user in n's network namespace (entered with
// nsenter, which leaves /sys alone for runc), with the user's env.
func (p *userPodman) run(n *netns, timeout time.Duration, args ...string) (string, error) {
	cmd := p.u.setpriv(false, append(append([]string{}, p.env...), append([]string{"podman", "--hooks-dir", p.hooks}, args...)...)...)
	return command(timeout, "nsenter", append([]string{"--net=" + n.path()}, cmd...)...)
}

// TestRootlessPodman checks that a container of rootless podman, started
// by the user with the hooks.d hook, gets eth0 from the user's rootless
// daemon and pings and resolves c1 on the root host h1 across the
// overlay; that the daemon adopted a TAP it could not have made, while a
// namespace of root's beside it stays refused; and that the container's
// exit detaches it.
func TestRootlessPodman(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "podman", "runc", "nsenter", "newuidmap")
	u := e.newUser()
	u.subIDs(e)
	e.openTun()
	cx := e.container("cx") // root's namespace: the user's daemon may not enter it
	_, lap, _, dl := e.rootlessBlue(u, fmt.Sprintf("\n[[endpoint]]\nnetwork = \"blue\"\nname = \"cx\"\nnetns = %q\n", cx.path()))
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")
	p := e.userPodman(u)

	script := "ip -o -4 addr show eth0 && ip route && ping -c 2 -W 2 10.77.0.10 && nslookup c1"
	out, err := p.run(lap.netns, 2*time.Minute, "run", "--rm", "--network", "none",
		"--annotation", "vxwire.network=blue", "--annotation", "vxwire.name=pc1",
		"--rootfs", p.rootfs, "sh", "-c", script)
	if err != nil {
		t.Fatalf("rootless podman run: %v", err)
	}
	for _, want := range []string{"eth0", "inet 10.77.0.", "default via 10.77.0.1 dev eth0", "2 packets received", "Address: 10.77.0.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("the rootless container's output lacks %q:\n%s", want, out)
		}
	}
	// Beside it, the namespace the user does not own stays refused, with
	// what is missing, and the daemon runs.
	if out, _, err := u.run(lap.netns, vxwireBin, "endpoint", "ls"); err != nil || !strings.Contains(out, "CAP_NET_ADMIN") || !dl.running() {
		t.Errorf("endpoint cx in root's namespace (%v):\n%s", err, out)
	}
	log := dl.logText()
	if !strings.Contains(log, `msg="endpoint attached" network=blue endpoint=pc1`) || !strings.Contains(log, "netns=/proc/") {
		t.Errorf("the laptop's daemon did not log the attach of pc1:\n%s", tail(log, 20))
	}
	// poststop detached it.
	e.eventually(reachTimeout, "pc1 detached", func() error {
		out, _, err := u.run(lap.netns, vxwireBin, "endpoint", "ls")
		if err != nil || strings.Contains(out, "pc1") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}
