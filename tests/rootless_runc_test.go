package tests

// runc started by the user with a user namespace in config.json (runc
// spec --rootless): runc runs the hook as the user, outside the
// container's user namespace, without any capability. The hook joins
// that user namespace and the container's network namespace through the
// TAP helper (nsenter, then `vxwire tap-helper`), makes eth0 there and
// passes it to the user's daemon.
//
//   PFX-h1 (root, vxwire)                        PFX-h2 "lap" (user PFX-u)
//   c1 10.77.0.10 on blue  ===== underlay =====  vxwire up (rootless)
//                                                runc run (rootless) rc1
//                                                  hook → helper: eth0 = TAP

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rootlessBundle writes a bundle for runc run by the user: runc spec
// --rootless with the user's ids mapped to root, a network namespace of
// its own, CAP_NET_RAW for ping, the vxwire hook at createRuntime and
// poststop with the user's socket, and the vxwire annotations.
func (e *env) rootlessBundle(u *testUser, name string, args ...string) string {
	e.t.Helper()
	return e.rootlessBundleCaps(u, name, []string{"CAP_NET_RAW"}, args...)
}

// rootlessBundleCaps is rootlessBundle with caps instead of CAP_NET_RAW.
func (e *env) rootlessBundleCaps(u *testUser, name string, caps []string, args ...string) string {
	e.t.Helper()
	bundle := filepath.Join(u.home, "bundle-"+name)
	if err := os.Mkdir(bundle, 0o700); err != nil {
		e.t.Fatal(err)
	}
	e.must("runc", "spec", "--rootless", "--bundle", bundle)
	rootfs := e.busyboxRootfs("rootfs-" + name)
	e.editSpec(bundle, func(spec map[string]any) {
		specProcess(spec, args, caps...)
		spec["root"] = map[string]any{"path": rootfs, "readonly": false}
		spec["hostname"] = name
		spec["annotations"] = map[string]string{"vxwire.network": blue.name, "vxwire.name": name}
		linux := spec["linux"].(map[string]any)
		linux["uidMappings"] = []map[string]int{{"containerID": 0, "hostID": u.uid, "size": 1}}
		linux["gidMappings"] = []map[string]int{{"containerID": 0, "hostID": u.gid, "size": 1}}
		linux["namespaces"] = append(linux["namespaces"].([]any), map[string]string{"type": "network"})
		hook := []map[string]any{{"path": vxwireBin, "args": []string{"vxwire", "oci-hook", "--socket", filepath.Join(u.runtime, "vxwire", "vxwire.sock")}}}
		spec["hooks"] = map[string]any{"createRuntime": hook, "poststop": hook}
	})
	for _, tree := range []string{bundle, rootfs} {
		if err := chownTree(tree, u.uid, u.gid); err != nil {
			e.t.Fatal(err)
		}
	}
	return bundle
}

// TestRootlessRunc checks that a container of runc run by the user (no
// capability anywhere, the hook outside the container's user namespace)
// gets eth0 from the user's rootless daemon through the TAP helper, pings
// and resolves c1 on the root host h1, and is detached when it exits.
func TestRootlessRunc(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "runc", "nsenter")
	u := e.newUser()
	e.openTun()
	_, lap, _, dl := e.rootlessBlue(u, "")
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")
	bundle := e.rootlessBundle(u, "rc1", "sh", "-c", "ip -o -4 addr show eth0 && ip route && ping -c 2 -W 2 10.77.0.10 && nslookup c1")

	// runc under nsenter --net (ip netns exec would remount /sys), as
	// the user, with an empty bounding set: no capability at all.
	cmd := append([]string{"--net=" + lap.path()}, u.setpriv(true, "runc", "--root", filepath.Join(u.runtime, "runc"),
		"run", "--bundle", bundle, e.prefix+"rc1")...)
	out, err := command(2*time.Minute, "nsenter", cmd...)
	if err != nil {
		t.Fatalf("rootless runc run: %v", err)
	}
	for _, want := range []string{"inet 10.77.0.", "default via 10.77.0.1 dev eth0", "2 packets received", "Address: 10.77.0.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("the rootless container's output lacks %q:\n%s", want, out)
		}
	}
	if log := dl.logText(); !strings.Contains(log, `msg="endpoint attached" network=blue endpoint=rc1`) {
		t.Errorf("the laptop's daemon did not log the attach of rc1:\n%s", tail(log, 20))
	}
	e.eventually(reachTimeout, "rc1 detached", func() error {
		out, _, err := u.run(lap.netns, vxwireBin, "endpoint", "ls")
		if err != nil || strings.Contains(out, "rc1") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}
