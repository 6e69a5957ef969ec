package tests

//  PFX-a1 10.77.0.50 (X)                      PFX-b1 10.77.0.60   PFX-b2 asks for X
//        |                                          |            (added by SIGHUP)
//  vxwire up (PFX-h1) = host A                vxwire up (PFX-h2) = host B
//                                                   then: B stopped, `vxwire up` with
//                                                   only PFX-b3 asking for X
//  PFX-u1 198.18.0.1/24 ============= veth ============= PFX-u2 198.18.0.2/24
//
//  network blue: VNI 256, 10.77.0.0/24

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIPAMConflict checks that an address is held by one endpoint across
// the overlay: another host's reload asking for it fails for that endpoint
// alone, with an error naming the holder, and a daemon started with only
// such an endpoint exits non-zero with that error.
func TestIPAMConflict(t *testing.T) {
	e := newEnv(t, "dig")
	h1, h2 := e.twoHosts()
	a1, b1, b2, b3 := e.container("a1"), e.container("b1"), e.container("b2"), e.container("b3")
	const x = "10.77.0.50"
	epB1 := epConf{network: "blue", name: "b1", ns: b1, addr: "10.77.0.60"}
	confB := hostConf{peers: []*host{h1}, networks: []netConf{blue}, endpoints: []epConf{epB1}}
	ds := e.startInTurn([]*host{h1, h2}, []hostConf{
		{peers: []*host{h2}, networks: []netConf{blue}, endpoints: []epConf{{network: "blue", name: "a1", ns: a1, addr: x}}},
		confB,
	})
	d2 := ds[1]
	e.eventually(dnsTimeout, "b1 resolves a1", func() error { return e.resolvesTo(b1, blue.gateway, "a1", x) })

	// Reload on B adding b2 with A's address: b2 is refused, b1 stays.
	logged := len(d2.logText())
	confB.endpoints = []epConf{epB1, {network: "blue", name: "b2", ns: b2, addr: x}}
	e.writeConfig(h2, confB)
	d2.signal(syscall.SIGHUP)
	var line string
	e.eventually(readyTimeout, "B logs the refused address", func() error {
		if !d2.running() {
			return permanent(fmt.Errorf("daemon B exited on a conflicting reload: %v", d2.err))
		}
		if line = conflictLine(d2.logText()[logged:], x); line == "" {
			return errors.New("no error naming " + x + " and its holder a1 on h1 logged yet")
		}
		return nil
	})
	t.Logf("B refused b2: %s", strings.TrimSpace(line))
	st := e.mustStatus(h2)
	if missing := missingEndpoints(st, []string{"b1"}); len(missing) > 0 {
		t.Fatalf("after the refused endpoint, b1 is gone from B's status")
	}
	if len(missingEndpoints(st, []string{"b2"})) == 0 {
		t.Errorf("B's status lists b2 with address %s although A holds %s", statusAddr(st, "blue", "b2"), x)
	}
	if out, err := e.in(b2, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("refused endpoint b2 has an eth0:\n%s", out)
	}
	e.mustPing(b1, x)
	e.mustPing(a1, "10.77.0.60")
	for _, n := range []*netns{a1, b1} {
		if err := e.resolvesTo(n, blue.gateway, "a1", x); err != nil {
			t.Error(err)
		}
		if err := e.hasStatus(n, blue.gateway, "b2", "NXDOMAIN"); err != nil {
			t.Error(err)
		}
	}

	// Start-up: an endpoint that cannot have its address is logged and
	// listed as not attached, and the daemon runs (before, `vxwire up`
	// exited, which kept every other endpoint of the host down too).
	if err := d2.stop(); err != nil {
		t.Fatalf("daemon B on SIGTERM: %v", err)
	}
	cfg := e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "b3", ns: b3, addr: x}}})
	start := time.Now()
	d3 := e.startDaemon(h2, cfg)
	var out string
	e.eventually(readyTimeout, "restarted B reports b3's conflict", func() error {
		if !d3.running() {
			return permanent(fmt.Errorf("vxwire up exited over a conflicting endpoint: %v", d3.err))
		}
		if out = d3.logText(); conflictLine(out, x) == "" {
			return fmt.Errorf("no error naming %s and its holder a1 on h1 yet", x)
		}
		return nil
	})
	t.Logf("vxwire up reported the conflict after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(conflictLine(out, x)))
	// The conflict is logged while the daemon starts, before its API
	// socket exists: ask until the socket answers.
	e.eventually(readyTimeout, "endpoint ls on B lists b3 as not attached", func() error {
		ls, err := command(cmdTimeout, vxwireBin, "endpoint", "ls", "--socket", e.socket(h2))
		if err != nil {
			return err
		}
		if !strings.Contains(ls, "not attached") {
			return permanent(fmt.Errorf("endpoint ls on B does not list b3 as not attached:\n%s", ls))
		}
		return nil
	})
	if w := grepLine(out, "no quorum"); w != "" {
		t.Errorf("the restarted B waited for the block log for b1's saved address: %s", strings.TrimSpace(w))
	}
	if out, err := e.in(b3, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("refused endpoint b3 has an eth0:\n%s", out)
	}
	e.eventually(dnsTimeout, "a1 still resolves to "+x+" on A", func() error { return e.resolvesTo(a1, blue.gateway, "a1", x) })
	if err := e.hasStatus(a1, blue.gateway, "b3", "NXDOMAIN"); err != nil {
		t.Error(err)
	}
}

// conflictLine returns the first line of log that names address x and its
// holder, a1 on h1, or "".
func conflictLine(log, x string) string {
	for line := range strings.Lines(log) {
		if strings.Contains(line, x) && strings.Contains(line, "a1 on h1") {
			return line
		}
	}
	return ""
}
