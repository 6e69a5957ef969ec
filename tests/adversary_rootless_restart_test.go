package tests

// A rootless container recycles its own namespace path while its user's
// daemon is dead.
//
//   PFX-h1 (root, vxwire)                        PFX-h2 "lap" (user PFX-u)
//   c1 10.77.0.10 on blue  ===== underlay =====  vxwire up (rootless): kill -9, up again
//                                                rk  eth0 kept: reopened (the probe)
//                                                rv  pid 1 moves itself to new network
//                                                    namespaces (same /proc/PID/ns/net)
//                                                    until one gets the dead one's inode,
//                                                    with a persistent TAP eth0 in it

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// flipScript is run by a container's first process: it moves itself to a
// new network namespace (unshare -n, then exec, so its pid and its path
// /proc/PID/ns/net stay) until the namespace's inode is the one in /flip,
// or 500 tries pass, and writes the inode it got and the tries to
// /flipped.
const flipScript = `#!/bin/sh
want=$(cat /flip)
ino=$(busybox stat -L -c %i /proc/self/ns/net)
n=${1:-0}
if [ "$ino" != "$want" ] && [ "$n" -lt 500 ]; then exec busybox unshare -n /bin/flip.sh $((n+1)); fi
echo "$ino $n" >/flipped
exec sleep 600
`

// TestAdversaryRootlessRestartRecycledNetns: the user's daemon dies. A
// rootless container's first process, root in its user namespace, leaves
// its network namespace for new ones, keeping its pid, so that the path
// the daemon saved (/proc/PID/ns/net) names another namespace; it tries
// until the kernel gives a new namespace the dead one's inode, so that
// the saved device and inode match too. There a TAP named eth0 waits
// with the index the container's had. (The container's root holds
// CAP_NET_ADMIN there and may make it with any ip(8) that has tuntap;
// busybox's has not, so the test's root makes it in the container's
// namespace.) Only the namespace cookie, which the restarted daemon reads
// through a socket the helper makes beside the TAP, tells the namespaces
// apart. With the cookie comparison taken out of tap.sameKept, this test
// sees the restarted daemon adopt the attacker's TAP as rv's interface.
// Now it refuses, reports rv failed, leaves the attacker's link alone and
// drops the record; the probe rk, whose namespace did not change, is
// reopened and reaches c1. If the kernel does not give the inode back,
// the saved inode alone refuses rv, and the test says so.
func TestAdversaryRootlessRestartRecycledNetns(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "runc", "nsenter")
	u := e.newUser()
	e.openTun()
	_, lap, _, dl := e.rootlessBlue(u, "")
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")
	rk := e.startUserRunc(u, lap, "rk", e.rootlessBundle(u, "rk", "sh", "-c", "exec sleep 600 </dev/null >/dev/null 2>&1"))
	bundle := e.rootlessBundleCaps(u, "rv", []string{"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"},
		"sh", "-c", "exec </dev/null >/dev/null 2>&1; while [ ! -s /flip ]; do sleep 0.1; done; exec busybox unshare -n /bin/flip.sh 1")
	rootfs := filepath.Join(e.dir, "rootfs-rv")
	flip := filepath.Join(rootfs, "bin", "flip.sh")
	if err := os.WriteFile(flip, []byte(flipScript), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(flip, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	rv := e.startUserRunc(u, lap, "rv", bundle)
	oldIno, err := rv.inNet("busybox", "stat", "-L", "-c", "%i", "/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	oldIno = strings.TrimSpace(oldIno)
	oldIdx, err := rv.inNet("cat", "/sys/class/net/eth0/ifindex")
	if err != nil {
		t.Fatal(err)
	}
	records := filepath.Join(u.home, ".local/state/vxwire/taps")
	if _, err := os.Stat(filepath.Join(records, "blue.rv.json")); err != nil {
		t.Fatalf("rv's tap has no record: %v", err)
	}
	dl.kill()

	if err := os.WriteFile(filepath.Join(rootfs, "flip"), []byte(oldIno+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var flipped string
	e.eventually(time.Minute, "rv's first process moved to a new namespace", func() error {
		b, err := os.ReadFile(filepath.Join(rootfs, "flipped"))
		flipped = strings.TrimSpace(string(b))
		if err != nil || flipped == "" {
			return fmt.Errorf("no /flipped yet: %v", err)
		}
		return nil
	})
	got, tries, _ := strings.Cut(flipped, " ")
	if got == oldIno {
		t.Logf("a new namespace got the dead one's inode %s after %s tries", got, tries)
	} else {
		t.Logf("the kernel did not give inode %s back in %s tries (got %s): only the saved inode is tested", oldIno, tries, got)
	}
	if _, err := rv.inNet("ip", "tuntap", "add", "dev", "eth0", "mode", "tap"); err != nil {
		t.Fatal(err)
	}
	if _, err := rv.inNet("ip", "link", "set", "eth0", "up"); err != nil {
		t.Fatal(err)
	}
	idx, _ := rv.inNet("cat", "/sys/class/net/eth0/ifindex")
	t.Logf("the attacker's eth0 has index %s, the container's had %s", strings.TrimSpace(idx), strings.TrimSpace(oldIdx))

	dl = e.startRootless(u, lap, filepath.Join(u.home, "lap.toml"))
	var reason string
	e.eventually(readyTimeout, "rv reported failed", func() error {
		st, err := e.userStatus(u, lap)
		if err != nil {
			return err
		}
		if statusAddr(st, "blue", "rv") != "" {
			return permanent(fmt.Errorf("the restarted daemon attached rv in the namespace that took its path: %+v", st.Endpoints))
		}
		i := slices.IndexFunc(st.Failed, func(f api.FailedEndpoint) bool { return f.Name == "rv" })
		if i < 0 {
			return fmt.Errorf("rv not failed: %+v", st.Failed)
		}
		reason = st.Failed[i].Reason
		if st.Refused["kept_tap_refused"] == 0 && got == oldIno {
			return fmt.Errorf("kept_tap_refused not counted: %v", st.Refused)
		}
		return nil
	})
	t.Logf("rv: %s", reason)
	if !strings.Contains(reason, "another namespace") {
		t.Errorf("rv's reason does not name the namespace: %s", reason)
	}
	link, err := rv.inNet("ip", "-o", "link", "show", "eth0")
	addrs, _ := rv.inNet("ip", "-o", "addr", "show", "dev", "eth0")
	if err != nil || !strings.Contains(link, "NO-CARRIER") || strings.Contains(addrs, "10.77.") {
		t.Errorf("the attacker's eth0 was attached, configured or removed: %v %s%s", err, link, addrs)
	}
	if _, err := os.Stat(filepath.Join(records, "blue.rv.json")); !os.IsNotExist(err) {
		t.Errorf("rv's record was kept: %v", err)
	}
	// The probe that can fail: rk's unchanged namespace is reopened.
	e.eventually(reachTimeout, "rk reaches c1 after the restart", func() error {
		out, err := rk.exec("ping -c 1 -W 2 10.77.0.10")
		if err != nil {
			return fmt.Errorf("%v %s", err, out)
		}
		return nil
	})
	if log := dl.logText(); !strings.Contains(log, `msg="endpoint's interface reopened" network=blue endpoint=rk`) {
		t.Errorf("rk's interface was not reopened:\n%s", tail(log, 30))
	}
}
