package tests

//  PFX-c1 10.77.0.10   PFX-c2 10.77.0.11                PFX-c3 10.77.0.20
//    eth0 (TAP)          eth0 (TAP) only while             eth0 (TAP)
//        \               / the config lists it                 |
//        vxwire up (PFX-h1)  <- SIGHUP, SIGTERM            vxwire up (PFX-h2)
//        PFX-u1 198.18.0.1/24 ========= veth ========= PFX-u2 198.18.0.2/24

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestReload checks SIGHUP: an added endpoint comes up, a broken file is
// refused while the old config keeps working, a removed endpoint goes away;
// and SIGTERM: the daemon exits 0 and the containers keep their TAP
// devices (live restore).
func TestReload(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c2, c3 := e.container("c1"), e.container("c2"), e.container("c3")
	ep1 := epConf{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}
	ep2 := epConf{network: "blue", name: "c2", ns: c2, addr: "10.77.0.11"}
	conf1 := hostConf{peers: []*host{h2}, networks: []netConf{blue}, endpoints: []epConf{ep1}}
	d1 := e.startDaemon(h1, e.writeConfig(h1, conf1))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{
		peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c3", ns: c3, addr: "10.77.0.20"}},
	}))
	d1.waitReady("c1")
	d2.waitReady("c3")
	e.mustPing(c1, "10.77.0.20")

	// Add an endpoint.
	conf2 := conf1
	conf2.endpoints = []epConf{ep1, ep2}
	e.writeConfig(h1, conf2)
	d1.signal(syscall.SIGHUP)
	d1.waitReady("c1", "c2")
	e.mustPing(c2, "10.77.0.20")
	e.mustPing(c3, "10.77.0.11")

	// A broken file is refused; the running config stays.
	logged := len(d1.logText())
	broken := conf2
	broken.networks = []netConf{{name: "blue", vni: 256, subnet: "10.77.0.0/24", gateway: "10.99.0.1"}}
	e.writeConfig(h1, broken)
	d1.signal(syscall.SIGHUP)
	e.eventually(readyTimeout, "daemon h1 logs the broken config", func() error {
		if !d1.running() {
			return permanent(fmt.Errorf("daemon exited on a broken config: %v", d1.err))
		}
		if msg := d1.logText()[logged:]; !strings.Contains(msg, "gateway") || !strings.Contains(msg, "10.99.0.1") {
			return fmt.Errorf("no error naming the gateway 10.99.0.1 logged yet")
		}
		return nil
	})
	if missing := missingEndpoints(e.mustStatus(h1), []string{"c1", "c2"}); len(missing) > 0 {
		t.Fatalf("after a refused reload, endpoints %v are gone", missing)
	}
	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c2, "10.77.0.20")

	// Remove an endpoint: its TAP goes away, the other keeps working.
	e.writeConfig(h1, conf1)
	d1.signal(syscall.SIGHUP)
	e.eventually(readyTimeout, "endpoint c2 removed", func() error {
		st, err := e.status(h1)
		if err != nil {
			return err
		}
		if len(missingEndpoints(st, []string{"c2"})) == 0 {
			return fmt.Errorf("status still lists c2")
		}
		if out, err := e.in(c2, "ip", "link", "show", "eth0"); err == nil {
			return fmt.Errorf("eth0 still in c2:\n%s", out)
		}
		return nil
	})
	e.mustPing(c1, "10.77.0.20")

	// SIGTERM: exit 0; the containers keep their TAP devices, with their
	// addresses, for the next daemon (see restart_test.go).
	for _, s := range []struct {
		d *daemon
		c *netns
	}{{d1, c1}, {d2, c3}} {
		if err := s.d.stop(); err != nil {
			t.Fatalf("daemon %s on SIGTERM: %v", s.d.h.id, err)
		}
		if out, err := e.in(s.c, "ip", "-o", "addr", "show", "dev", "eth0"); err != nil || !strings.Contains(out, "10.77.0.") {
			t.Errorf("%s after SIGTERM: eth0 or its address gone: %v\n%s", s.c.name, err, out)
		}
	}
}
