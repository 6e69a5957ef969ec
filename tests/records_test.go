package tests

//  PFX-a1  PFX-a2  PFX-ax          PFX-b1 10.77.0.100     PFX-c1 10.77.0.101
//  (addresses allocated)                |                       |
//        \    |    /                    |                       |
//  vxwire up (PFX-h1) = host A    vxwire up (PFX-h2) = B  vxwire up (PFX-h3) = C
//   ^ SIGHUP without ax, SIGKILL, restart
//  PFX-u1 198.18.0.1 ----------- PFX-u2 198.18.0.2 ----- PFX-u3 198.18.0.3
//                 \________ bridge br0 in PFX-sw ________/
//
//  network blue: VNI 256, 10.77.0.0/24; every host: peer_timeout = "3s".
//  B and C look A's names up from their containers, on their own gateway.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peerTimeout is the host.peer_timeout of TestRecordsFollowLifecycle.
const peerTimeout = 3 * time.Second

// TestRecordsFollowLifecycle checks that the overlay's names follow host
// A's endpoints: an endpoint removed by reload stops resolving on B and C,
// all of A's names go when A's daemon is killed, and come back with the
// same allocated addresses when A restarts with the same config.
func TestRecordsFollowLifecycle(t *testing.T) {
	e := newEnv(t, "dig")
	hosts, _ := e.threeHosts()
	a, b, c := hosts[0], hosts[1], hosts[2]
	a1, a2, ax := e.container("a1"), e.container("a2"), e.container("ax")
	b1, c1 := e.container("b1"), e.container("c1")
	confA := hostConf{peers: others(hosts, a), networks: []netConf{blue}, peerTimeout: "3s",
		endpoints: []epConf{
			{network: "blue", name: "a1", ns: a1},
			{network: "blue", name: "a2", ns: a2},
			{network: "blue", name: "ax", ns: ax},
		}}
	confs := []hostConf{confA,
		{peers: others(hosts, b), networks: []netConf{blue}, peerTimeout: "3s",
			endpoints: []epConf{{network: "blue", name: "b1", ns: b1, addr: "10.77.0.100"}}},
		{peers: others(hosts, c), networks: []netConf{blue}, peerTimeout: "3s",
			endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.101"}}},
	}
	// B and C first: A's endpoints take address blocks, which needs a
	// majority of the three hosts up.
	ds := e.startInTurn([]*host{b, c, a}, []hostConf{confs[1], confs[2], confs[0]})
	dA := ds[2]
	stA := e.mustStatus(a)
	addrs := map[string]string{}
	for _, name := range []string{"a1", "a2", "ax"} {
		if addrs[name] = statusAddr(stA, "blue", name); addrs[name] == "" {
			t.Fatalf("status of A lists no address for %s: %+v", name, stA.Endpoints)
		}
	}
	t.Logf("A allocated a1=%s a2=%s ax=%s", addrs["a1"], addrs["a2"], addrs["ax"])
	observers := []*netns{b1, c1}

	// resolved: every name resolves from B's and C's containers to addrs.
	resolved := func(names ...string) func() error {
		return func() error {
			for _, o := range observers {
				for _, n := range names {
					if err := e.resolvesTo(o, blue.gateway, n, addrs[n]); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	// gone: no name resolves from B's or C's containers any more.
	gone := func(names ...string) func() error {
		return func() error {
			for _, o := range observers {
				for _, n := range names {
					if err := e.hasStatus(o, blue.gateway, n, "NXDOMAIN"); err != nil {
						return err
					}
				}
			}
			return nil
		}
	}
	e.eventually(dnsTimeout, "B and C resolve A's names", resolved("a1", "a2", "ax"))

	// Reload without ax: its record goes everywhere.
	confA.endpoints = confA.endpoints[:2]
	e.writeConfig(a, confA)
	dA.signal(syscall.SIGHUP)
	took, err := timed(10*time.Second, gone("ax"))
	if err != nil {
		t.Fatalf("ax removed from A's config: %v", err)
	}
	t.Logf("ax stopped resolving on B and C %v after SIGHUP", took.Round(time.Millisecond))
	if err := resolved("a1", "a2")(); err != nil {
		t.Fatalf("after removing ax: %v", err)
	}
	e.eventually(readyTimeout, "resolv.conf of the removed ax deleted", func() error {
		if _, err := os.Stat("/etc/netns/" + ax.name + "/resolv.conf"); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("/etc/netns/%s/resolv.conf: %v", ax.name, err)
		}
		return nil
	})

	// SIGKILL: A says nothing, the others declare it dead.
	dA.kill()
	bound := peerTimeout + 5*time.Second
	took, err = timed(bound, gone("a1", "a2"))
	if err != nil {
		t.Fatalf("A killed: its names still resolve (peer_timeout %v): %v", peerTimeout, err)
	}
	t.Logf("A's names stopped resolving on B and C %v after SIGKILL (peer_timeout %v)", took.Round(time.Millisecond), peerTimeout)
	if err := e.resolvesTo(b1, blue.gateway, "c1", "10.77.0.101"); err != nil {
		t.Fatalf("with A dead, B no longer resolves C's name: %v", err)
	}

	// Restart A with the same file: same addresses, names back everywhere.
	restart := time.Now()
	dA = e.startDaemon(a, e.writeConfig(a, confA))
	stA = dA.waitReady("a1", "a2")
	readyAfter := time.Since(restart)
	for _, name := range []string{"a1", "a2"} {
		if got := statusAddr(stA, "blue", name); got != addrs[name] {
			t.Errorf("after restart %s has address %s, had %s", name, got, addrs[name])
		}
	}
	took, err = timed(dnsTimeout, resolved("a1", "a2"))
	if err != nil {
		t.Fatalf("A restarted: %v", err)
	}
	t.Logf("A ready %v after the restart; its names resolved again on B and C %v after that",
		readyAfter.Round(time.Millisecond), took.Round(time.Millisecond))
	if err := gone("ax")(); err != nil {
		t.Errorf("after A's restart: %v", err)
	}
	e.mustPing(b1, addrs["a1"])
	e.mustPing(a2, "10.77.0.101")
	if _, err := e.in(c1, "ping", "-c", "1", "-W", "2", "a2"); err != nil {
		t.Errorf("C's container cannot ping a2 by name: %v", err)
	}

	// A restarted host keeps its saved addresses, inside its own address
	// blocks, without asking the block log for anything.
	if log := dA.logText(); strings.Contains(log, "no quorum") {
		t.Errorf("A waited for the block log after its restart (ready after %v): %s",
			readyAfter.Round(time.Millisecond), strings.TrimSpace(grepLine(log, "no quorum")))
	}
}

// grepLine returns the first line of s that contains sub.
func grepLine(s, sub string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}
