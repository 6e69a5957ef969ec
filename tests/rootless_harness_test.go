package tests

// Helpers for the rootless tests: an unprivileged user made for the test,
// and a vxwire daemon run as that user, without any capability, in a host
// namespace the root harness owns.
//
//   PFX-h1 (root, vxwire)                        PFX-h2 "lap" (user PFX-u)
//   PFX-u1 198.18.0.1/24 ======= veth ======== PFX-u2 198.18.0.2/24
//   c1 10.77.0.10 on blue                        vxwire up as the user:
//                                                CapEff = CapPrm = CapBnd = 0,
//                                                state ~/.local/state/vxwire,
//                                                sockets in $XDG_RUNTIME_DIR

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
)

// testUser is an ordinary user created for one test, with a home in the
// test's directory and its own runtime directory.
type testUser struct {
	name     string
	uid, gid int
	home     string // HOME
	runtime  string // XDG_RUNTIME_DIR
}

// newUser creates the user PFX-u (no password, no login shell) and removes
// it in cleanup. Its home and runtime directories are its own, mode 0700;
// the test's directory becomes traversable (not listable) so that it can
// reach them.
func (e *env) newUser() *testUser {
	e.t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		e.t.Skip("rootless tests need setpriv (Debian package util-linux)")
	}
	name := strings.TrimSuffix(e.prefix, "-") + "u"
	e.must("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name)
	e.t.Cleanup(func() {
		if _, err := command(cmdTimeout, "userdel", name); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		e.t.Fatal(err)
	}
	tu := &testUser{name: name, home: filepath.Join(e.dir, "home")}
	tu.uid, _ = strconv.Atoi(u.Uid)
	tu.gid, _ = strconv.Atoi(u.Gid)
	tu.runtime = filepath.Join(tu.home, "run")
	// The user must reach the test's directory and the binary's (made
	// 0700 by root): traverse only, nothing listed.
	for _, d := range []string{filepath.Dir(e.dir), e.dir, filepath.Dir(vxwireBin)} {
		if err := os.Chmod(d, 0o711); err != nil {
			e.t.Fatal(err)
		}
	}
	for _, d := range []string{tu.home, tu.runtime} {
		if err := os.Mkdir(d, 0o700); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Chown(d, tu.uid, tu.gid); err != nil {
			e.t.Fatal(err)
		}
	}
	return tu
}

// file writes a file of the user's, mode 0600, in its home.
func (u *testUser) file(e *env, name, content string) string {
	e.t.Helper()
	p := filepath.Join(u.home, name)
	if err := os.WriteFile(p+".new", []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chown(p+".new", u.uid, u.gid); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// genKey makes a key pair as env.genKey("vxwire", name) does, with the
// private key in the user's home as NAME.key, owned by the user.
func (u *testUser) genKey(e *env, name string) wgKey {
	e.t.Helper()
	k := e.genKey("vxwire", name)
	priv, err := os.ReadFile(k.file)
	if err != nil {
		e.t.Fatal(err)
	}
	return wgKey{pub: k.pub, file: u.file(e, name+".key", string(priv))}
}

// as returns the command line that runs args as the user inside namespace
// n (none when nil): no capabilities in any set, no supplementary groups,
// and an environment of the user's own.
func (u *testUser) as(n *netns, args ...string) []string {
	var cmd []string
	if n != nil {
		cmd = []string{"ip", "netns", "exec", n.name}
	}
	return append(cmd, u.setpriv(true, args...)...)
}

// setpriv returns the setpriv command line that runs args as the user.
// With bounding, the bounding set is emptied too, so not even a setuid
// program it runs gains a capability; without it, setuid helpers work as
// for any user (newuidmap, which rootless podman needs).
func (u *testUser) setpriv(bounding bool, args ...string) []string {
	cmd := []string{"setpriv", "--reuid", strconv.Itoa(u.uid), "--regid", strconv.Itoa(u.gid), "--clear-groups", "--inh-caps=-all"}
	if bounding {
		cmd = append(cmd, "--bounding-set=-all")
	}
	// -C: start in the user's home; the caller's directory (the checkout)
	// may be one the user cannot enter, which podman refuses.
	cmd = append(cmd, "env", "-i", "-C", u.home, "HOME="+u.home, "XDG_RUNTIME_DIR="+u.runtime, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	return append(cmd, args...)
}

// run runs args as the user in n, bounded by cmdTimeout, and returns the
// standard output and error apart.
func (u *testUser) run(n *netns, args ...string) (stdout, stderr string, err error) {
	cmd := u.as(n, args...)
	return run(cmdTimeout, cmd[0], cmd[1:]...)
}

// startRootless runs `vxwire up -c cfg` as the user in h's namespace; the
// rest is startDaemon's (cleanup stops it by its pid).
func (e *env) startRootless(u *testUser, h *host, cfg string) *daemon {
	e.t.Helper()
	// ip netns exec, setpriv and env each exec the next, so cmd.Process
	// is the daemon itself.
	return e.startDaemonCmd(h, "rootless daemon", u.as(h.netns, vxwireBin, "up", "-c", cfg))
}

// userStatus runs `vxwire status --json` as the user, with the default
// socket: the client finds the rootless daemon in $XDG_RUNTIME_DIR.
func (e *env) userStatus(u *testUser, h *host) (api.Status, error) {
	var st api.Status
	out, _, err := u.run(h.netns, vxwireBin, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("vxwire status --json: %w\n%s", err, out)
	}
	return st, nil
}

// waitUserReady polls the user's status until the daemon answers, failing
// at once if it exits.
func (e *env) waitUserReady(u *testUser, d *daemon) api.Status {
	e.t.Helper()
	var st api.Status
	e.eventually(readyTimeout, "rootless daemon "+d.h.id+" ready", func() error {
		if !d.running() {
			return permanent(fmt.Errorf("daemon exited: %v", d.err))
		}
		s, err := e.userStatus(u, d.h)
		st = s
		return err
	})
	return st
}

// capSets returns the CapEff, CapPrm and CapBnd lines of process pid.
func capSets(pid int) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	sets := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "Uid"} {
			if v, ok := strings.CutPrefix(line, k+":"); ok {
				sets[k] = strings.TrimSpace(v)
			}
		}
	}
	return sets, nil
}

// checkUnprivileged fails the test unless the daemon runs as the user with
// no capability in its effective, permitted and bounding sets.
func (e *env) checkUnprivileged(u *testUser, d *daemon) {
	e.t.Helper()
	sets, err := capSets(d.cmd.Process.Pid)
	if err != nil {
		e.t.Fatal(err)
	}
	const none = "0000000000000000"
	if sets["CapEff"] != none || sets["CapPrm"] != none || sets["CapBnd"] != none {
		e.t.Fatalf("rootless daemon holds capabilities: %v", sets)
	}
	if f := strings.Fields(sets["Uid"]); len(f) < 2 || f[1] != strconv.Itoa(u.uid) {
		e.t.Fatalf("rootless daemon runs as %v, not uid %d", sets["Uid"], u.uid)
	}
}
