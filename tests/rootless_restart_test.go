package tests

// A rootless container's interface outlives its user's daemon: the TAP
// the hook passed is persistent, and the restarted daemon has the TAP
// helper reopen it inside the container's user and network namespaces.
//
//   PFX-h1 (root, vxwire)                        PFX-h2 "lap" (user PFX-u)
//   c1 10.77.0.10 on blue  ===== underlay =====  vxwire up (rootless): kill -9, up again
//                                                runc run -d (rootless) rk1
//                                                  eth0 = TAP, kept throughout

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootlessCtr is a detached rootless container of the user (runc, or
// podman with only pid and eth0 used).
type rootlessCtr struct {
	e    *env
	u    *testUser
	lap  *host
	id   string
	root string // runc --root
	pid  int    // the container's first process
}

// startUserRunc runs a detached rootless container name in lap's
// namespace with bundle, and deletes it (poststop detaches it) in cleanup.
func (e *env) startUserRunc(u *testUser, lap *host, name, bundle string) *rootlessCtr {
	e.t.Helper()
	c := &rootlessCtr{e: e, u: u, lap: lap, id: e.prefix + name, root: filepath.Join(u.runtime, "runc")}
	if _, err := c.runc(2*time.Minute, "run", "-d", "--bundle", bundle, c.id); err != nil {
		e.t.Fatalf("rootless runc run -d: %v", err)
	}
	e.t.Cleanup(func() {
		if out, err := c.runc(time.Minute, "delete", "-f", c.id); err != nil {
			e.t.Errorf("cleanup: %v %s", err, out)
		}
	})
	out, err := c.runc(cmdTimeout, "state", c.id)
	var st struct{ Pid int }
	if err == nil {
		err = json.Unmarshal([]byte(out), &st)
	}
	if err != nil || st.Pid <= 0 {
		e.t.Fatalf("runc state %s: %v %s", c.id, err, out)
	}
	c.pid = st.Pid
	return c
}

// runc runs runc as the user, without any capability, in lap's namespace
// (nsenter, which leaves /sys alone).
func (c *rootlessCtr) runc(timeout time.Duration, args ...string) (string, error) {
	cmd := c.u.setpriv(true, append([]string{"runc", "--root", c.root}, args...)...)
	return command(timeout, "nsenter", append([]string{"--net=" + c.lap.path()}, cmd...)...)
}

// exec runs script in the container, as its process runs.
func (c *rootlessCtr) exec(script string) (string, error) {
	return c.runc(cmdTimeout, "exec", c.id, "sh", "-c", script)
}

// inNet runs args as root in the container's network namespace.
func (c *rootlessCtr) inNet(args ...string) (string, error) {
	return command(cmdTimeout, "nsenter", append([]string{"--net=/proc/" + fmt.Sprint(c.pid) + "/ns/net"}, args...)...)
}

// eth0 returns the container's eth0 as the kernel shows it: its index,
// its IPv4 addresses and its routes, whether or not it has carrier.
func (c *rootlessCtr) eth0() (string, error) {
	idx, err := c.inNet("cat", "/sys/class/net/eth0/ifindex")
	if err != nil {
		return "", err
	}
	addrs, err := c.inNet("ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if err != nil {
		return "", err
	}
	var kept []string
	for _, l := range strings.Split(addrs, "\n") {
		if f := strings.Fields(l); len(f) > 3 {
			kept = append(kept, f[3])
		}
	}
	routes, err := c.inNet("ip", "-4", "route", "show", "dev", "eth0")
	if err != nil {
		return "", err
	}
	// linkdown marks routes while no daemon holds the TAP (no carrier).
	routes = strings.ReplaceAll(strings.TrimSpace(routes), " linkdown", "")
	return fmt.Sprintf("index %s addrs %v routes %q", strings.TrimSpace(idx), kept, routes), nil
}

// TestRootlessRestartKeepsEth0 kills the user's rootless daemon with
// SIGKILL while a rootless runc container is attached, then starts it
// again as the user: the container's eth0 stays throughout, with its
// index, the address the daemon gave it and the address and route the
// container added itself, and it pings and resolves c1 on the root host
// again within seconds of the restart. Before this change the TAP went
// with the daemon's descriptor, and the restarted daemon, which may not
// make a TAP there, reported the endpoint failed.
func TestRootlessRestartKeepsEth0(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "runc", "nsenter")
	u := e.newUser()
	e.openTun()
	_, lap, _, dl := e.rootlessBlue(u, "")
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")
	bundle := e.rootlessBundleCaps(u, "rk1", []string{"CAP_NET_RAW", "CAP_NET_ADMIN"},
		"sh", "-c", "exec sleep 600 </dev/null >/dev/null 2>&1")
	c := e.startUserRunc(u, lap, "rk1", bundle)

	const reach = "ping -c 1 -W 2 10.77.0.10 && nslookup c1"
	if out, err := c.exec("ip addr add 10.77.0.250/32 dev eth0 && ip route add 10.99.0.0/24 via 10.77.0.1 dev eth0"); err != nil {
		t.Fatalf("rk1 adds an address and a route: %v %s", err, out)
	}
	// h1 may not have rk1's record yet: the first ping can go unanswered.
	e.eventually(reachTimeout, "rk1 pings and resolves c1 before the restart", func() error {
		out, err := c.exec(reach)
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	before, err := c.eth0()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(before, "10.77.0.250/32") || !strings.Contains(before, "10.99.0.0/24 via 10.77.0.1") {
		t.Fatalf("rk1's eth0 lacks what the container added: %s", before)
	}

	dl.kill()
	if now, err := c.eth0(); err != nil || now != before {
		t.Fatalf("rk1's eth0 after kill -9 of the daemon: %v\n now    %s\n before %s", err, now, before)
	}
	start := time.Now()
	dl = e.startRootless(u, lap, filepath.Join(u.home, "lap.toml"))
	e.waitUserReady(u, dl)
	e.checkUnprivileged(u, dl)
	e.eventually(reachTimeout, "rk1 pings and resolves c1 after the restart", func() error {
		out, err := c.exec(reach)
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("rk1 pinged and resolved c1 %v after the daemon was started again", took.Round(time.Millisecond))
	if now, err := c.eth0(); err != nil || now != before {
		t.Errorf("rk1's eth0 after the restart: %v\n now    %s\n before %s", err, now, before)
	}
	log := dl.logText()
	if !strings.Contains(log, `msg="endpoint's interface reopened" network=blue endpoint=rk1`) {
		t.Errorf("the restarted daemon did not reopen rk1's interface:\n%s", tail(log, 30))
	}
	if took > 15*time.Second {
		t.Errorf("rk1 reached c1 only %v after the restart", took)
	}
}

// TestRootlessStopDownAndGone checks the rest of a rootless container's
// kept interface: a container that exits while no daemon runs (rk3,
// deleted after kill -9 while its poststop hook finds no daemon) leaves
// nothing that the next `vxwire up` reports or keeps, while rk2 beside it
// is reopened; a graceful stop (SIGTERM) leaves rk2's eth0 as kill -9
// does; and `vxwire down`, run by the user, removes it from the running
// container through the helper, with its record.
func TestRootlessStopDownAndGone(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "runc", "nsenter")
	u := e.newUser()
	e.openTun()
	_, lap, _, dl := e.rootlessBlue(u, "")
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")
	sleeper := []string{"sh", "-c", "exec sleep 600 </dev/null >/dev/null 2>&1"}
	rk2 := e.startUserRunc(u, lap, "rk2", e.rootlessBundle(u, "rk2", sleeper...))
	rk3 := e.startUserRunc(u, lap, "rk3", e.rootlessBundle(u, "rk3", sleeper...))
	before, err := rk2.eth0()
	if err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(u.home, ".local/state/vxwire/taps")
	cfg := filepath.Join(u.home, "lap.toml")
	if _, err := os.Stat(filepath.Join(records, "blue.rk3.json")); err != nil {
		t.Fatalf("rk3's tap has no record: %v", err)
	}

	dl.kill()
	if out, err := rk3.runc(time.Minute, "delete", "-f", rk3.id); err != nil {
		t.Fatalf("runc delete rk3: %v %s", err, out)
	}
	dl = e.startRootless(u, lap, cfg)
	e.eventually(readyTimeout, "rk3 released and rk2 reopened", func() error {
		st, err := e.userStatus(u, lap)
		if err != nil {
			return err
		}
		if len(st.Failed) > 0 {
			return permanent(fmt.Errorf("failed endpoints: %+v", st.Failed))
		}
		if statusAddr(st, "blue", "rk3") != "" {
			return permanent(fmt.Errorf("rk3 attached: %+v", st.Endpoints))
		}
		if statusAddr(st, "blue", "rk2") == "" {
			return fmt.Errorf("rk2 not attached: %+v", st.Endpoints)
		}
		if _, err := os.Stat(filepath.Join(records, "blue.rk3.json")); !os.IsNotExist(err) {
			return fmt.Errorf("rk3's record is still there: %v", err)
		}
		return nil
	})

	if err := dl.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	if now, err := rk2.eth0(); err != nil || now != before {
		t.Fatalf("rk2's eth0 after SIGTERM of the daemon: %v\n now    %s\n before %s", err, now, before)
	}
	out, _, err := u.run(lap.netns, vxwireBin, "down", "-c", cfg)
	if err != nil || !strings.Contains(out, "removed 1 container interfaces") {
		t.Fatalf("vxwire down as the user: %v %s", err, out)
	}
	if out, err := rk2.inNet("ip", "-o", "link", "show", "eth0"); err == nil {
		t.Errorf("rk2's eth0 outlived vxwire down: %s", out)
	}
	if ents, _ := os.ReadDir(records); len(ents) != 0 {
		t.Errorf("records left after vxwire down: %v", ents)
	}
}

// TestRootlessPodmanRestartKeepsEth0 is TestRootlessRestartKeepsEth0 for
// rootless podman, whose hook runs inside podman's user namespace: the
// daemon's helper joins that user namespace to reopen the TAP.
func TestRootlessPodmanRestartKeepsEth0(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "podman", "runc", "nsenter", "newuidmap")
	u := e.newUser()
	u.subIDs(e)
	e.openTun()
	_, lap, _, dl := e.rootlessBlue(u, "")
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")
	p := e.userPodman(u)
	name := e.prefix + "pk1"
	if out, err := p.run(lap.netns, 2*time.Minute, "run", "-d", "--name", name, "--network", "none", "--cap-add", "NET_ADMIN,NET_RAW",
		"--annotation", "vxwire.network=blue", "--annotation", "vxwire.name=pk1",
		"--rootfs", p.rootfs, "sleep", "600"); err != nil {
		t.Fatalf("rootless podman run -d: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := p.run(lap.netns, time.Minute, "rm", "-f", "-t", "0", name); err != nil {
			t.Errorf("cleanup: %v %s", err, out)
		}
	})
	out, err := p.run(lap.netns, cmdTimeout, "inspect", "-f", "{{.State.Pid}}", name)
	c := &rootlessCtr{e: e, u: u, lap: lap, id: name}
	if _, serr := fmt.Sscan(strings.TrimSpace(out), &c.pid); err != nil || serr != nil {
		t.Fatalf("podman inspect: %v %v %s", err, serr, out)
	}
	exec := func(script string) (string, error) {
		return p.run(lap.netns, cmdTimeout, "exec", name, "sh", "-c", script)
	}
	const reach = "ping -c 1 -W 2 10.77.0.10 && nslookup c1"
	if out, err := exec("ip addr add 10.77.0.250/32 dev eth0 && ip route add 10.99.0.0/24 via 10.77.0.1 dev eth0"); err != nil {
		t.Fatalf("pk1 adds an address and a route: %v %s", err, out)
	}
	e.eventually(reachTimeout, "pk1 pings and resolves c1 before the restart", func() error {
		out, err := exec(reach)
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	before, err := c.eth0()
	if err != nil {
		t.Fatal(err)
	}
	dl.kill()
	if now, err := c.eth0(); err != nil || now != before {
		t.Fatalf("pk1's eth0 after kill -9 of the daemon: %v\n now    %s\n before %s", err, now, before)
	}
	start := time.Now()
	dl = e.startRootless(u, lap, filepath.Join(u.home, "lap.toml"))
	e.eventually(reachTimeout, "pk1 pings and resolves c1 after the restart", func() error {
		out, err := exec(reach)
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	t.Logf("pk1 pinged and resolved c1 %v after the daemon was started again", time.Since(start).Round(time.Millisecond))
	if now, err := c.eth0(); err != nil || now != before {
		t.Errorf("pk1's eth0 after the restart: %v\n now    %s\n before %s", err, now, before)
	}
	if log := dl.logText(); !strings.Contains(log, `msg="endpoint's interface reopened" network=blue endpoint=pk1`) {
		t.Errorf("the restarted daemon did not reopen pk1's interface:\n%s", tail(log, 30))
	}
}
