package tests

// Restarts and what they leave behind.
//
//   PFX-h1 vxwire (kill -9, restarted), no peers
//     PFX-keep eth0  attached through the API; stays
//     PFX-gone eth0  attached through the API; the namespace is deleted while the daemon is dead
//     PFX-cfg  eth0  a config endpoint; removed from the file while the daemon is dead
//     PFX-pr   eth0  the probe: attaches as "gone" with gone's address after the restart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRestartRemovesLeftovers kills a daemon, deletes one container's
// namespace and removes another container's endpoint from the config
// file, then starts the daemon again: the records of both are gone, the
// config endpoint's TAP is removed from its still running container, the
// name and address of the deleted container are free for a new attach,
// and the untouched container is reopened.
func TestRestartRemovesLeftovers(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	keep, cfgC, probe := e.container("keep"), e.container("cfg"), e.container("pr")
	gone := &netns{name: e.prefix + "gone"}
	e.must("ip", "netns", "add", gone.name)
	t.Cleanup(func() { _, _ = command(cmdTimeout, "ip", "netns", "del", gone.name) })
	withCfg := hostConf{networks: []netConf{blue}, endpoints: []epConf{{network: "blue", name: "cfg", ns: cfgC}}}
	d := e.startDaemon(h1, e.writeConfig(h1, withCfg))
	d.waitReady("cfg")
	e.cliAttach(h1, "blue", keep, "keep")
	goneAddr := prefixAddr(t, e.cliAttach(h1, "blue", gone, "gone").Address)
	taps := filepath.Join(e.dir, h1.id+"-state", "taps")
	for _, name := range []string{"keep", "gone", "cfg"} {
		if _, err := os.Stat(filepath.Join(taps, "blue."+name+".json")); err != nil {
			t.Fatalf("no record of %s's tap: %v", name, err)
		}
	}

	d.kill()
	e.must("ip", "netns", "del", gone.name)
	e.mustIn(cfgC, "ip", "link", "show", "eth0") // kept past the kill
	d = e.startDaemon(h1, e.writeConfig(h1, hostConf{networks: []netConf{blue}}))
	st := d.waitReady("keep")
	if len(st.Failed) != 0 || len(missingEndpoints(st, []string{"gone"})) == 0 || len(missingEndpoints(st, []string{"cfg"})) == 0 {
		t.Fatalf("after the restart: endpoints %+v, failed %+v", st.Endpoints, st.Failed)
	}
	for name, want := range map[string]bool{"keep": true, "gone": false, "cfg": false} {
		_, err := os.Stat(filepath.Join(taps, "blue."+name+".json"))
		if has := err == nil; has != want {
			t.Errorf("record of %s present %v, want %v", name, has, want)
		}
	}
	if out, err := e.in(cfgC, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("the tap of the endpoint removed from the config is still in its container:\n%s", out)
	}
	if link := e.mustIn(keep, "ip", "-o", "link", "show", "eth0"); strings.Contains(link, "NO-CARRIER") {
		t.Errorf("keep's eth0 was not reopened: %s", link)
	}
	// The probe: the name and the address of the deleted container are free.
	ep := e.cliAttachArgs(h1, probe, "--network", "blue", "--name", "gone", "--ip", goneAddr.String())
	if prefixAddr(t, ep.Address) != goneAddr {
		t.Fatalf("probe attached as gone at %s, want %s", ep.Address, goneAddr)
	}
	e.mustPing(probe, blue.gateway)
}

// TestRestartOCIHook attaches a runc container through the OCI hook, kills
// the daemon and starts it again: the container keeps its eth0 and its
// reachability, and `runc delete` afterwards (the poststop hook) detaches
// it from the new daemon, which removes the TAP and frees the name.
func TestRestartOCIHook(t *testing.T) {
	e := newEnv(t, "runc", "nsenter")
	h1, h2, d1, _ := e.runtimeHosts()
	c1 := e.ociContainer(h1, "runc", "c1")
	c2 := e.ociContainer(h2, "runc", "c2")
	c1.start()
	c2.start()
	e.eventually(20*time.Second, "c1 pings c2", func() error {
		_, err := c1.exec("ping", "-c", "1", "-W", "1", "c2")
		return err
	})
	before, _, err := e.apiEndpoint(h1, "c1")
	if err != nil {
		t.Fatal(err)
	}
	c1.execOK("ip", "addr", "add", "10.88.0.1/32", "dev", "eth0")

	d1.kill()
	if out := c1.execOK("ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.88.0.1/32") {
		t.Fatalf("c1's eth0 lost its own address with the daemon:\n%s", out)
	}
	d1 = e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue}}))
	d1.waitReady("c1")
	after, ok, err := e.apiEndpoint(h1, "c1")
	if err != nil || !ok || after.Address != before.Address || after.MAC != before.MAC || after.ContainerID != c1.id {
		t.Fatalf("c1 after the restart: %+v (%v, %v), before %+v", after, ok, err, before)
	}
	if out := c1.execOK("ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.88.0.1/32") {
		t.Errorf("c1's own address gone after the restart:\n%s", out)
	}
	c1.execOK("ping", "-c", "3", "-W", "1", "c2")

	c1.stop()
	e.waitDetached(h1, "c1")
	if _, err := os.Stat(filepath.Join(e.dir, h1.id+"-state", "taps", "blue.c1.json")); err == nil {
		t.Error("the tap record of c1 outlived its detach")
	}
	c3 := e.ociContainer(h1, "runc", "c1b")
	c3.start()
	if _, ok, err := e.apiEndpoint(h1, "c1b"); err != nil || !ok {
		t.Fatalf("a new container after c1's delete is not attached: %v %v", ok, err)
	}
}

// execOK runs a command in the container and fails the test on error.
func (c *ociContainer) execOK(args ...string) string {
	c.e.t.Helper()
	out, err := c.exec(args...)
	if err != nil {
		c.e.t.Fatalf("%s exec %v: %v\n%s", c.id, args, err, out)
	}
	return out
}

// pingSeqRE matches the sequence number of a reply line of ping.
var pingSeqRE = regexp.MustCompile(`icmp_seq=(\d+)`)

// TestRestartPingGap measures what a kill -9 and an immediate restart of
// one daemon cost a ping flood (one request every 10 ms) between
// containers on two hosts: the requests lost and the longest gap. Kernel
// VXLAN has no daemon to kill; its figure is zero.
func TestRestartPingGap(t *testing.T) {
	e := newEnv(t)
	p := e.bluePair()
	e.mustPing(p.c1, "10.77.0.20")
	const count, interval = 600, 10 * time.Millisecond
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := e.in(p.c1, "ping", "-n", "-i", "0.01", "-c", strconv.Itoa(count), "-W", "1", "10.77.0.20")
		done <- result{out, err}
	}()
	e.eventually(10*time.Second, "the flood running", func() error {
		st, err := e.status(p.h1)
		if err != nil {
			return err
		}
		if c := endpointStatus(t, st, "c1").Counters; c.RxFrames+c.TxFrames < 100 {
			return fmt.Errorf("%d frames of c1 so far", c.RxFrames+c.TxFrames)
		}
		return nil
	})
	start := time.Now()
	p.d1.kill()
	p.d1 = e.startDaemon(p.h1, filepath.Join(e.dir, p.h1.id+".toml"))
	p.d1.waitReady("c1")
	down := time.Since(start)
	r := <-done
	seqs := map[int]bool{}
	for _, m := range pingSeqRE.FindAllStringSubmatch(r.out, -1) {
		n, _ := strconv.Atoi(m[1])
		seqs[n] = true
	}
	gap, run := 0, 0
	for i := 1; i <= count; i++ {
		if seqs[i] {
			run = 0
			continue
		}
		run++
		gap = max(gap, run)
	}
	lost := count - len(seqs)
	t.Logf("ping -i 0.01 -c %d across kill -9 + restart (daemon back in %v): %d lost, longest gap %d requests (about %v)",
		count, down.Round(time.Millisecond), lost, gap, time.Duration(gap)*interval)
	if !seqs[count] && !seqs[count-1] {
		t.Errorf("the last requests got no reply: traffic did not come back\n%s", tail(r.out, 5))
	}
	if time.Duration(gap)*interval > restartBar {
		t.Errorf("gap %v longer than %v", time.Duration(gap)*interval, restartBar)
	}
}

// TestDown: SIGTERM keeps the containers' interfaces, and `vxwire down`
// removes them once the daemon has stopped (it refuses while the daemon
// runs); the next `vxwire up` attaches the endpoints again.
func TestDown(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	cfg := e.writeConfig(h1, hostConf{networks: []netConf{blue}, endpoints: []epConf{{network: "blue", name: "c1", ns: c1}}})
	d := e.startDaemon(h1, cfg)
	d.waitReady("c1")
	e.cliAttach(h1, "blue", c2, "c2")
	if so, se, code := vx("down", "-c", cfg); code == 0 || !strings.Contains(se, "running") {
		t.Fatalf("down with the daemon running: exit %d\n%s%s", code, so, se)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*netns{c1, c2} {
		e.mustIn(c, "ip", "link", "show", "eth0")
		if _, err := os.Stat(filepath.Join("/etc/netns", c.name, "resolv.conf")); err != nil {
			t.Errorf("%s: resolv.conf gone with the daemon: %v", c.name, err)
		}
	}
	if out := e.mustVX("down", "-c", cfg); !strings.Contains(out, "removed 2 ") {
		t.Errorf("down: %s", out)
	}
	for _, c := range []*netns{c1, c2} {
		if out, err := e.in(c, "ip", "link", "show", "eth0"); err == nil {
			t.Errorf("%s: eth0 still there after down:\n%s", c.name, out)
		}
		if _, err := os.Stat(filepath.Join("/etc/netns", c.name, "resolv.conf")); err == nil {
			t.Errorf("%s: vxwire's resolv.conf still there after down", c.name)
		}
	}
	d = e.startDaemon(h1, cfg)
	d.waitReady("c1", "c2")
	e.mustPing(c2, blue.gateway)
}

// TestRestartSeveralNetworks restarts a daemon under a container attached
// to two networks, red first (eth0, the default route) and blue second
// (eth1): both TAPs are reopened, red keeps the default route, and the
// container's resolv.conf and routes are what they were.
func TestRestartSeveralNetworks(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	c := e.container("c")
	cfg := e.writeConfig(h1, hostConf{networks: []netConf{blue, red}})
	d := e.startDaemon(h1, cfg)
	d.waitReady()
	e.cliAttachArgs(h1, c, "--network", "red", "--name", "c")
	e.cliAttachArgs(h1, c, "--network", "blue", "--name", "c", "--ifname", "eth1")
	resolv := filepath.Join("/etc/netns", c.name, "resolv.conf")
	read := func() (string, string) {
		b, err := os.ReadFile(resolv)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), e.mustIn(c, "ip", "route", "show")
	}
	resolvBefore, routesBefore := read()
	d.kill()
	d = e.startDaemon(h1, cfg)
	d.waitReady("c")
	e.eventually(readyTimeout, "both networks reopened", func() error {
		eps, err := e.apiEndpoints(h1)
		if err != nil {
			return err
		}
		if len(eps) != 2 {
			return fmt.Errorf("%d endpoints", len(eps))
		}
		for _, ep := range eps {
			if ep.DefaultRoute != (ep.Network == "red") {
				return permanent(fmt.Errorf("after the restart %s has the default route %v", ep.Network, ep.DefaultRoute))
			}
		}
		return nil
	})
	for _, ifname := range []string{"eth0", "eth1"} {
		if link := e.mustIn(c, "ip", "-o", "link", "show", ifname); strings.Contains(link, "NO-CARRIER") {
			t.Errorf("%s not reopened: %s", ifname, link)
		}
	}
	if resolvAfter, routesAfter := read(); resolvAfter != resolvBefore || routesAfter != routesBefore {
		t.Errorf("after the restart resolv.conf\n%s\nroutes\n%s\nwere\n%s\n%s", resolvAfter, routesAfter, resolvBefore, routesBefore)
	}
	e.mustPing(c, red.gateway)
	e.mustPing(c, blue.gateway)
}
