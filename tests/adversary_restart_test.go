package tests

// A recycled namespace path after a crash.
//
//   PFX-h1 vxwire (kill -9, restarted), no peers
//     PFX-kp  eth0  attached through the API; unchanged: reopened (the probe)
//     PFX-va  eth0  attached through the API   } while the daemon is dead the
//     PFX-vc  eth0  a config endpoint          } path names another namespace,
//                                                whose owner made its own
//                                                persistent TAP "eth0" there
//   the old namespaces stay alive, held by the test (as a container that
//   still runs under another path would)

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vxwire/vxwire/internal/api"
)

// TestAdversaryRestartRecycledNetns: a daemon dies; the namespace paths
// of two of its containers (one attached through the API, one from the
// config file) are made to name new namespaces, in which an attacker
// puts a persistent TAP named eth0, with the same interface index the
// container's TAP had (the first link after lo in a fresh namespace) and
// the same type. A reopen by name, or by name and index, would attach the
// restarted daemon to the attacker's TAP and hand it the container's
// address, MAC, DNS name and traffic; with the namespace check of
// tunnel/tap switched off, this test sees the daemon attach vc to the
// attacker's TAP and delete the attacker's eth0 in va's new namespace as
// a leftover. The saved namespace identity
// (device and inode) tells the namespaces apart: the restarted daemon
// attaches neither, reports both, leaves the attacker's links and the
// old containers' TAPs alone, and reopens the container whose namespace
// did not change.
func TestAdversaryRestartRecycledNetns(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	kp, va, vc := e.container("kp"), e.container("va"), e.container("vc")
	cfg := e.writeConfig(h1, hostConf{networks: []netConf{blue}, endpoints: []epConf{{network: "blue", name: "vc", ns: vc}}})
	d := e.startDaemon(h1, cfg)
	d.waitReady("vc")
	e.cliAttach(h1, "blue", kp, "kp")
	e.cliAttach(h1, "blue", va, "va")
	held := map[*netns]ns.NetNS{}
	for _, c := range []*netns{va, vc} {
		h, err := ns.GetNS(c.path())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		held[c] = h
	}
	d.kill()

	for _, c := range []*netns{va, vc} {
		old := e.linkIndex(c, "eth0")
		e.must("ip", "netns", "del", c.name)
		e.must("ip", "netns", "add", c.name)
		e.must("ip", "-n", c.name, "tuntap", "add", "dev", "eth0", "mode", "tap")
		e.must("ip", "-n", c.name, "link", "set", "eth0", "up")
		t.Logf("%s: the attacker's eth0 has index %s, the container's had %s", c.name, e.linkIndex(c, "eth0"), old)
	}
	d = e.startDaemon(h1, cfg)
	st := d.waitReady("kp")

	for _, name := range []string{"va", "vc"} {
		if !slices.Contains(missingEndpoints(st, []string{name}), name) {
			t.Errorf("the restarted daemon attached %s in the namespace that took its path: %+v", name, st.Endpoints)
		}
	}
	if i := slices.IndexFunc(st.Failed, func(f api.FailedEndpoint) bool { return f.Name == "va" }); i < 0 || !strings.Contains(st.Failed[i].Reason, "another namespace") {
		t.Errorf("va not reported failed for its namespace: %+v", st.Failed)
	}
	eps, err := e.apiEndpoints(h1)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(eps, func(ep api.Endpoint) bool { return ep.Name == "vc" }); i < 0 || eps[i].Error == "" {
		t.Errorf("vc not reported with an error: %+v", eps)
	} else {
		t.Logf("vc: %s", eps[i].Error)
	}
	for _, c := range []*netns{va, vc} {
		link := e.mustIn(c, "ip", "-o", "link", "show", "eth0")
		addrs := e.mustIn(c, "ip", "-o", "addr", "show", "dev", "eth0")
		if !strings.Contains(link, "NO-CARRIER") || strings.Contains(addrs, "10.77.") {
			t.Errorf("%s: the attacker's eth0 was attached or configured: %s%s", c.name, link, addrs)
		}
		// The container's own TAP, in its old namespace, is untouched.
		out, err := e.inHeld(held[c], "ip", "-o", "addr", "show", "dev", "eth0")
		if err != nil || !strings.Contains(out, "10.77.") {
			t.Errorf("%s: the old namespace's eth0 was removed or changed: %v %s", c.name, err, out)
		}
	}
	// The probe that can fail: the unchanged namespace is reopened.
	if link := e.mustIn(kp, "ip", "-o", "link", "show", "eth0"); strings.Contains(link, "NO-CARRIER") {
		t.Errorf("kp's eth0 was not reopened: %s", link)
	}
	e.mustPing(kp, blue.gateway)
}

// linkIndex returns the interface index of ifname in c, as text.
func (e *env) linkIndex(c *netns, ifname string) string {
	e.t.Helper()
	out := e.mustIn(c, "cat", "/sys/class/net/"+ifname+"/ifindex")
	return strings.TrimSpace(out)
}

// inHeld runs a command in the namespace h, which the test holds open.
func (e *env) inHeld(h ns.NetNS, args ...string) (string, error) {
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), h.Fd())
	return command(cmdTimeout, "nsenter", append([]string{"--net=" + path}, args...)...)
}

// TestAdversaryRestartReusedNetnsInode: the kernel gives the inode of a
// namespace that is gone to the next new one, so a device and inode alone
// do not tell namespaces apart over time. A container dies while its
// daemon is dead; an attacker creates namespaces at the container's path
// until one gets the dead namespace's inode, and puts a persistent TAP
// named eth0 in it (index 2, as the container's had). The saved device,
// inode, name and index all match; before the namespace cookie was
// compared too (SO_NETNS_COOKIE, never reused), the restarted daemon
// attached the victim's endpoint to the attacker's TAP. Now it refuses,
// and the container whose namespace did not change is reopened.
func TestAdversaryRestartReusedNetnsInode(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	kp, v := e.container("kp"), e.container("v")
	cfg := e.writeConfig(h1, hostConf{networks: []netConf{blue}})
	d := e.startDaemon(h1, cfg)
	d.waitReady()
	e.cliAttach(h1, "blue", kp, "kp")
	e.cliAttach(h1, "blue", v, "v")
	old := e.mustIn(v, "stat", "-L", "-c", "%d %i", v.path())
	d.kill()

	reused := false
	e.must("ip", "netns", "del", v.name)
	for i := 0; i < 500 && !reused; i++ {
		e.must("ip", "netns", "add", v.name)
		if out, _ := command(cmdTimeout, "stat", "-L", "-c", "%d %i", v.path()); out == old {
			reused = true
			t.Logf("a new namespace got the dead one's inode after %d tries", i+1)
			break
		}
		e.must("ip", "netns", "del", v.name)
	}
	if !reused {
		e.must("ip", "netns", "add", v.name) // for the cleanup
		t.Skip("the kernel did not give the dead namespace's inode to a new one within 500 tries")
	}
	e.must("ip", "-n", v.name, "tuntap", "add", "dev", "eth0", "mode", "tap")
	e.must("ip", "-n", v.name, "link", "set", "eth0", "up")
	d = e.startDaemon(h1, cfg)
	st := d.waitReady("kp")
	if !slices.Contains(missingEndpoints(st, []string{"v"}), "v") {
		t.Errorf("the restarted daemon attached v to the attacker's tap in the namespace with the reused inode: %+v", st.Endpoints)
	}
	link := e.mustIn(v, "ip", "-o", "link", "show", "eth0")
	addrs := e.mustIn(v, "ip", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(link, "NO-CARRIER") || strings.Contains(addrs, "10.77.") {
		t.Errorf("the attacker's eth0 was attached or configured: %s%s", link, addrs)
	}
	if i := slices.IndexFunc(st.Failed, func(f api.FailedEndpoint) bool { return f.Name == "v" }); i >= 0 {
		t.Logf("reported: %s", st.Failed[i].Reason)
	} else {
		t.Errorf("v not reported failed: %+v", st.Failed)
	}
	if link := e.mustIn(kp, "ip", "-o", "link", "show", "eth0"); strings.Contains(link, "NO-CARRIER") {
		t.Errorf("kp's eth0 was not reopened: %s", link)
	}
	e.mustPing(kp, blue.gateway)
}
