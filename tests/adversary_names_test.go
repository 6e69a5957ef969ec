package tests

// Two hosts claim one endpoint name at the same moment:
//
//   PFX-h1 (vxwire, h1.sock)                    PFX-h2 (vxwire, h2.sock)
//   PFX-u1 198.18.0.1/24 ======= veth ======= PFX-u2 198.18.0.2/24
//     c1 (config), r1 (attach race)               c2 (config), r2 (attach race)
//
//   network blue (10.77.0.0/24) on both hosts; the address-block log has
//   both hosts as voters.

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLog waits until both hosts of p know the log's leader: a network
// created through the log on h1 reaches h2.
func (e *env) waitLog(p bluePair, name, subnet string) {
	e.t.Helper()
	e.mustVX("network", "create", "--socket", e.socket(p.h1), "--subnet", subnet, name)
	e.eventually(readyTimeout, "h2 applies "+name+" from the log", func() error {
		ns, err := e.cliNetworks(p.h2)
		if err != nil {
			return err
		}
		if _, ok := findNetwork(ns, name); !ok {
			return fmt.Errorf("network %s not on h2 yet", name)
		}
		return nil
	})
}

// TestAdversaryNameRace: an attacker on h2 attaches a container under a
// name at the very moment h1 attaches its own under that name, hoping to
// share the name and take half of its DNS answers. Exactly one of the two
// attaches succeeds each time; the other is refused naming the holder.
// Before this fix the check read gossip records, which neither host had
// yet: both attaches succeeded and the name round-robined between them.
// Beside it, two different names attached at the same moment both succeed.
func TestAdversaryNameRace(t *testing.T) {
	e := newEnv(t)
	p := e.bluePair()
	e.waitLog(p, "ready", "10.79.0.0/24")
	hosts := []*host{p.h1, p.h2}
	ns := []*netns{e.container("r1"), e.container("r2")}
	iterations := 12
	deadline := time.Now().Add(3 * time.Minute)
	wins := map[string]int{}
	attach := func(j int, name, ifname string) (string, int) {
		so, se, code := vx("attach", "--socket", e.socket(hosts[j]), "--network", "blue", "--netns", ns[j].path(),
			"--name", name, "--ifname", ifname)
		return so + se, code
	}
	for i := 0; i < iterations && time.Now().Before(deadline); i++ {
		name := fmt.Sprintf("web%d", i)
		outs, codes := make([]string, 2), make([]int, 2)
		var wg sync.WaitGroup
		for j := range hosts {
			wg.Go(func() { outs[j], codes[j] = attach(j, name, fmt.Sprintf("w%d", i)) })
		}
		wg.Wait()
		if (codes[0] == 0) == (codes[1] == 0) {
			t.Fatalf("race %d for %s: exit codes %d and %d, want exactly one 0\nh1: %s\nh2: %s", i, name, codes[0], codes[1], outs[0], outs[1])
		}
		w := 0
		if codes[1] == 0 {
			w = 1
		}
		wins[hosts[w].id]++
		if codes[1-w] != exitConflict || !strings.Contains(outs[1-w], "held by host "+hosts[w].id) {
			t.Fatalf("race %d: the loser on %s exited %d, want %d naming %s:\n%s", i, hosts[1-w].id, codes[1-w], exitConflict, hosts[w].id, outs[1-w])
		}
		e.noStackTrace("losing attach", outs[1-w])
		if out, err := e.in(ns[1-w], "ip", "link", "show", fmt.Sprintf("w%d", i)); err == nil {
			t.Fatalf("race %d: the refused endpoint has an interface:\n%s", i, out)
		}

		// The probe: different names at the same moment both attach.
		for j := range hosts {
			wg.Go(func() { outs[j], codes[j] = attach(j, fmt.Sprintf("db%d-%d", i, j), fmt.Sprintf("d%d", i)) })
		}
		wg.Wait()
		if codes[0] != 0 || codes[1] != 0 {
			t.Fatalf("race %d: different names: exit codes %d and %d\nh1: %s\nh2: %s", i, codes[0], codes[1], outs[0], outs[1])
		}
		// Keep each namespace's interfaces few.
		e.mustVX("detach", "--socket", e.socket(hosts[w]), "--network", "blue", "--name", name)
		for j, h := range hosts {
			e.mustVX("detach", "--socket", e.socket(h), "--network", "blue", "--name", fmt.Sprintf("db%d-%d", i, j))
		}
	}
	t.Logf("name races won: %v", wins)
}

// TestConfigEndpointNameHeld: a host restarts with a config-file endpoint
// named as one another host holds. The daemon starts anyway, reports the
// endpoint as FILE:LINE with the holder, lists it as not attached and
// gives it no interface; its other config endpoint attaches (the probe).
// Before this fix the file's endpoints were never checked against other
// hosts' names: the second c1 attached and c1 round-robined in DNS.
func TestConfigEndpointNameHeld(t *testing.T) {
	e := newEnv(t)
	p := e.bluePair()
	// h1's claim of c1, made at start before the log had a leader, is
	// committed in the background once there is one; an attach of c1 on
	// h2 refused naming h1 shows it is.
	e.waitLog(p, "ready", "10.79.0.0/24")
	scratch := e.container("s2")
	e.eventually(readyTimeout, "the log refuses c1 to h2", func() error {
		so, se, code := vx("attach", "--socket", e.socket(p.h2), "--network", "blue", "--netns", scratch.path(), "--name", "c1")
		if code != exitConflict || !strings.Contains(se, "held by host h1") {
			if code == 0 {
				return permanent(fmt.Errorf("h2 attached c1 while h1 holds it:\n%s", so))
			}
			return fmt.Errorf("exit code %d\n%s%s", code, so, se)
		}
		return nil
	})
	// An entry committed after that refusal reaching h2 means h2 has
	// applied (and saved) h1's claim too: the log applies in order.
	e.waitLog(p, "ready2", "10.78.0.0/24")
	if err := p.d2.stop(); err != nil {
		t.Fatalf("daemon h2 on SIGTERM: %v", err)
	}
	dup := e.container("d2")
	cfg := e.writeConfig(p.h2, hostConf{peers: []*host{p.h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: p.c2, addr: "10.77.0.20"}, {network: "blue", name: "c1", ns: dup}}})
	d := e.startDaemon(p.h2, cfg)
	d.waitReady("c2")
	want := regexp.MustCompile(regexp.QuoteMeta(cfg) + `:\d+: endpoint\[1\]: name \\?"c1\\?" on network \\?"blue\\?" is held by host h1`)
	e.eventually(readyTimeout, "h2 reports the second c1 as FILE:LINE naming h1", func() error {
		if !d.running() {
			return permanent(fmt.Errorf("vxwire up exited over a held name: %v", d.err))
		}
		if !want.MatchString(d.logText()) {
			return fmt.Errorf("no error matching %s in the log yet", want)
		}
		return nil
	})
	ls := e.mustVX("endpoint", "ls", "--socket", e.socket(p.h2))
	if !regexp.MustCompile(`c1 .*not attached: .*held by host h1`).MatchString(ls) {
		t.Errorf("endpoint ls on h2 does not list c1 as not attached, naming h1:\n%s", ls)
	}
	if out, err := e.in(dup, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("the refused c1 has an eth0:\n%s", out)
	}
	// The probe: c2 of the same file is up and reaches c1 on h1 by name.
	e.eventually(dnsTimeout, "c1 resolves to h1's c1 from c2", func() error { return e.resolvesTo(p.c2, "10.77.0.1", "c1", "10.77.0.10") })
	if out, err := e.in(p.c2, "ping", "-c", "1", "-W", "2", "10.77.0.10"); err != nil {
		t.Errorf("c2 cannot ping c1 after the restart: %v\n%s", err, out)
	}
}

// TestAdversaryNamePartition: while the hosts are cut apart, each side
// attaches a container named web (neither knows a leader, so each honours
// the name and commits its claim later, as it does for explicit
// addresses). Once the cut heals, the log gives web to one of them; the
// other host takes its web down and lists it among its failed endpoints
// naming the holder, and web resolves to the holder's address alone on both hosts.
// Before this fix both kept web and DNS round-robined it between two
// containers. The probe: c1 and c2 of the file stay attached throughout.
func TestAdversaryNamePartition(t *testing.T) {
	e := newEnv(t, "dig")
	p := e.bluePair()
	e.waitLog(p, "ready", "10.79.0.0/24")
	h1, h2 := p.h1, p.h2
	e.cutUnderlay(h1)
	addrs := map[string]string{}
	for i, h := range []*host{h1, h2} {
		c := e.container("w" + h.id)
		// Explicit addresses: a dynamic one may need a new block, which
		// needs a quorum.
		ip := fmt.Sprintf("10.77.0.%d", 50+i)
		// Until the host gives up its leader, the attach waits for a
		// commit that cannot come and fails; then it is honoured.
		e.eventually(90*time.Second, "web attached on "+h.id+" during the cut", func() error {
			so, se, code := vx("attach", "--socket", e.socket(h), "--network", "blue", "--netns", c.path(), "--name", "web", "--ip", ip)
			if code != 0 {
				return fmt.Errorf("exit code %d\n%s%s", code, so, se)
			}
			return nil
		})
		eps, err := e.apiEndpoints(h)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range eps {
			if ep.Name == "web" {
				addrs[h.id], _, _ = strings.Cut(ep.Address, "/")
			}
		}
	}
	e.healUnderlay(h1)

	var winner, loser *host
	e.eventually(90*time.Second, "one host keeps web, the other lists it as failed", func() error {
		kept := map[string]bool{}
		failed := map[string]string{}
		for _, h := range []*host{h1, h2} {
			eps, err := e.apiEndpoints(h)
			if err != nil {
				return err
			}
			for _, ep := range eps {
				if ep.Name == "web" && ep.Error == "" {
					kept[h.id] = true
				}
			}
			st, err := e.status(h)
			if err != nil {
				return err
			}
			for _, f := range st.Failed {
				if f.Name == "web" {
					failed[h.id] = f.Reason
				}
			}
		}
		switch {
		case kept["h1"] && !kept["h2"] && strings.Contains(failed["h2"], "held by host h1"):
			winner, loser = h1, h2
		case kept["h2"] && !kept["h1"] && strings.Contains(failed["h1"], "held by host h2"):
			winner, loser = h2, h1
		case !kept["h1"] && !kept["h2"]:
			return permanent(fmt.Errorf("neither host kept web: %v", failed))
		default:
			return fmt.Errorf("kept %v, not attached %v", kept, failed)
		}
		return nil
	})
	t.Logf("%s kept web, %s took its web down", winner.id, loser.id)
	for _, c := range []*netns{p.c1, p.c2} {
		e.eventually(dnsTimeout, "web resolves to "+winner.id+"'s alone", func() error {
			return e.resolvesTo(c, "10.77.0.1", "web", addrs[winner.id])
		})
	}
	e.mustPing(p.c1, "10.77.0.20")
}
