package tests

// One container on two networks, on two hosts, through the config file
// and through CNI (cnitool, CNI_IFNAME eth0 then eth1).
//
//   PFX-h1 (vxwire: blue, red)                    PFX-h2 (vxwire: blue, red)
//   PFX-u1 198.18.0.1 ========== veth ========== PFX-u2 198.18.0.2
//     PFX-c1  eth0 blue 10.77.0.10                  PFX-c2  eth0 blue 10.77.0.20
//             eth1 red  10.78.0.10                          eth1 red  10.78.0.20
//     PFX-cx  holds a link named eth0 already:       PFX-c3  eth0 blue only
//             its config endpoint cannot attach
//     PFX-ct1 cnitool: eth0 blue, eth1 red           PFX-ct2 cnitool: eth0 blue, eth1 red

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSeveralNetworksConfigAndCNI checks that a container on blue and red
// gets eth0 and eth1, the default route on eth0 only, reaches both
// networks on the other host, and resolves names of both networks through
// its first gateway while a blue-only container cannot resolve red's
// names; that a config endpoint that cannot attach leaves the daemon up
// and is listed with its error; and the same through CNI. Before this
// change the second TAP failed with "cannot add default route via
// 10.78.0.1: file exists" and the daemon refused to start.
func TestSeveralNetworksConfigAndCNI(t *testing.T) {
	e := newEnv(t)
	tool := e.cnitool()
	h1, h2 := e.twoHosts()
	c1, c2, c3, cx := e.container("c1"), e.container("c2"), e.container("c3"), e.container("cx")
	e.must("ip", "-n", cx.name, "link", "add", "eth0", "type", "veth", "peer", "name", "other")
	nets := []netConf{blue, red}
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: nets, endpoints: []epConf{
		{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"},
		{network: "red", name: "c1", ns: c1, addr: "10.78.0.10", ifname: "eth1"},
		{network: "blue", name: "cx", ns: cx, addr: "10.77.0.99"},
	}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: nets, endpoints: []epConf{
		{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"},
		{network: "red", name: "c2", ns: c2, addr: "10.78.0.20", ifname: "eth1"},
		{network: "blue", name: "c3", ns: c3, addr: "10.77.0.30"},
	}}))
	d1.waitReady("c1")
	d2.waitReady("c2", "c3")

	// The endpoint that could not attach is reported, the daemon runs.
	out, err := command(cmdTimeout, vxwireBin, "endpoint", "ls", "--socket", e.socket(h1))
	if err != nil || !strings.Contains(out, "not attached") || !strings.Contains(out, "h1.toml:") {
		t.Errorf("endpoint ls on h1 (%v) does not report cx as not attached with FILE:LINE:\n%s", err, out)
	}
	if !d1.running() {
		t.Fatal("daemon h1 stopped over an endpoint it could not attach")
	}

	for _, c := range []*netns{c1, c2} {
		checkTwoInterfaces(t, e, c)
	}
	for _, p := range []struct {
		from *netns
		to   string
	}{{c1, "10.77.0.20"}, {c1, "10.78.0.20"}, {c2, "10.77.0.10"}, {c2, "10.78.0.10"}} {
		e.eventually(20*time.Second, p.from.name+" pings "+p.to, func() error {
			_, err := e.in(p.from, "ping", "-c", "1", "-W", "1", p.to)
			return err
		})
	}
	b, err := os.ReadFile(filepath.Join("/etc/netns", c1.name, "resolv.conf"))
	if err != nil || !strings.Contains(string(b), "nameserver 10.77.0.1\nsearch blue red\n") {
		t.Errorf("resolv.conf of c1 (%v): want blue's gateway, search blue red:\n%s", err, b)
	}
	// c1 resolves c2 on both networks through blue's gateway; c3, on blue
	// only, asks the same question of the same kind of server and gets
	// nothing for red.
	for _, q := range []struct {
		from      *netns
		gw, name  string
		want      string
		nxdomain  bool
		reasonFor string
	}{
		{c1, "10.77.0.1", "c2", "10.77.0.20", false, "a bare name on the first network"},
		{c1, "10.77.0.1", "c2.red", "10.78.0.20", false, "a name on the second network"},
		{c2, "10.77.0.1", "c1.red", "10.78.0.10", false, "a name on the second network, from h2"},
		{c3, "10.77.0.1", "c2.red", "", true, "red's name from a blue-only container"},
	} {
		// 45 s: gossip sometimes delivers a just-started host's records
		// only at the next push-pull.
		e.eventually(45*time.Second, q.from.name+" resolves "+q.name, func() error {
			out, err := e.in(q.from, "dig", "+short", "+time=1", "+tries=1", "@"+q.gw, q.name)
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(out); got != q.want {
				return fmt.Errorf("%s (%s): got %q, want %q", q.name, q.reasonFor, got, q.want)
			}
			return nil
		})
	}

	// CNI: two ADDs into one namespace, eth0 blue then eth1 red.
	ct1, ct2 := e.container("ct1"), e.container("ct2")
	for _, hc := range []struct {
		h  *host
		ns *netns
	}{{h1, ct1}, {h2, ct2}} {
		for i, n := range []string{"blue", "red"} {
			cniAddNetwork(t, e, tool, hc.h, hc.ns, n, fmt.Sprintf("eth%d", i))
		}
		checkTwoInterfaces(t, e, hc.ns)
	}
	for _, to := range []string{"10.77.0.", "10.78.0."} {
		addr := strings.TrimSpace(e.mustIn(ct2, "sh", "-c", "ip -4 -o addr show | grep -o '"+to+"[0-9]*' | head -1"))
		e.eventually(20*time.Second, "ct1 pings "+addr, func() error {
			_, err := e.in(ct1, "ping", "-c", "1", "-W", "1", addr)
			return err
		})
	}
}

// checkTwoInterfaces checks that c has eth0 and eth1 and one default
// route, through eth0.
func checkTwoInterfaces(t *testing.T, e *env, c *netns) {
	t.Helper()
	for _, ifname := range []string{"eth0", "eth1"} {
		if _, err := e.in(c, "ip", "link", "show", ifname); err != nil {
			t.Errorf("%s has no %s: %v", c.name, ifname, err)
		}
	}
	routes := strings.TrimSpace(e.mustIn(c, "ip", "-4", "route", "show", "default"))
	if strings.Count(routes, "\n") != 0 || !strings.Contains(routes, "dev eth0") {
		t.Errorf("%s default routes: %q, want one, through eth0", c.name, routes)
	}
}

// cniAddNetwork runs cnitool add for network in ns as ifname, against h's
// daemon, and registers the matching del.
func cniAddNetwork(t *testing.T, e *env, tool string, h *host, ns *netns, network, ifname string) {
	t.Helper()
	dir := filepath.Join(e.dir, "netconf-"+h.id+"-"+network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := e.prefix + network
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[{"type":"vxwire","network":%q,"socket":%q}]}`,
		name, network, e.socket(h))
	if err := os.WriteFile(filepath.Join(dir, "vxwire.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"NETCONFPATH=" + dir, "CNI_PATH=" + e.pluginDir(), "CNI_IFNAME=" + ifname,
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=" + strings.TrimPrefix(ns.name, e.prefix)}
	cni := func(cmd string) (string, error) {
		return e.runLogged(cmdTimeout, env, "ip", "netns", "exec", h.name, tool, cmd, name, ns.path())
	}
	if out, err := cni("add"); err != nil {
		t.Fatalf("cnitool add %s %s as %s: %v\n%s", network, ns.name, ifname, err, out)
	}
	t.Cleanup(func() { cni("del") })
}
