package tests

// The OCI hook (runc) attaching one container to two networks, on two
// hosts: annotation vxwire.network=blue,red gives eth0 on blue and eth1 on
// red.
//
//   PFX-h1 (vxwire: blue, red)  ====== veth ======  PFX-h2 (vxwire: blue, red)
//     runc m1: eth0 blue, eth1 red                     runc m2: eth0 blue, eth1 red

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// setAnnotation sets annotation k to v in the bundle's config.json.
func (c *ociContainer) setAnnotation(k, v string) {
	c.e.t.Helper()
	c.e.editSpec(c.bundle, func(spec map[string]any) {
		ann, _ := spec["annotations"].(map[string]any)
		if ann == nil {
			ann = map[string]any{}
		}
		ann[k] = v
		spec["annotations"] = ann
	})
}

// TestOCIHookSeveralNetworks checks that runc containers annotated
// vxwire.network=blue,red get eth0 and eth1, the default route on eth0
// only, a resolv.conf that searches both networks, reach each other on
// both networks by address and name, and are detached from both at
// poststop.
func TestOCIHookSeveralNetworks(t *testing.T) {
	e := newEnv(t, "runc", "nsenter")
	h1, h2 := e.twoHosts()
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue, red}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue, red}}))
	d1.waitReady()
	d2.waitReady()
	m1, m2 := e.ociContainer(h1, "runc", "m1"), e.ociContainer(h2, "runc", "m2")
	m1.setAnnotation("vxwire.network", "blue,red")
	m2.setAnnotation("vxwire.network", "blue,red")
	m2.setAnnotation("vxwire.ip", "10.77.0.20,10.78.0.20")
	m1.start()
	m2.start()
	for _, c := range []*ociContainer{m1, m2} {
		routes, err := c.exec("ip", "-4", "route", "show", "default")
		if err != nil || strings.Count(routes, "default") != 1 || !strings.Contains(routes, "dev eth0") {
			t.Errorf("%s default routes %q (%v): want one, through eth0", c.name, routes, err)
		}
		if out, err := c.exec("ip", "link", "show", "eth1"); err != nil {
			t.Errorf("%s has no eth1: %v\n%s", c.name, err, out)
		}
		resolv, err := c.exec("cat", "/etc/resolv.conf")
		if err != nil || !strings.Contains(resolv, "nameserver "+blue.gateway) || !strings.Contains(resolv, "search blue red") {
			t.Errorf("%s resolv.conf (%v): want blue's gateway, search blue red:\n%s", c.name, err, resolv)
		}
	}
	// Names wait for h2's records, which gossip sometimes delivers only at
	// the next push-pull (about 30 s) when both daemons have just started.
	for _, target := range []string{"10.77.0.20", "10.78.0.20", "m2", "m2.red"} {
		e.eventually(45*time.Second, "m1 pings "+target, func() error {
			if _, err := m1.exec("ping", "-c", "1", "-W", "1", target); err != nil {
				out, _ := m1.exec("nslookup", target)
				return fmt.Errorf("%v\nnslookup %s:\n%s", err, target, out)
			}
			return nil
		})
	}
	if out, _ := m1.exec("nslookup", "m2.red", blue.gateway); !strings.Contains(out, "10.78.0.20") {
		t.Errorf("m2.red through blue's gateway from m1:\n%s", out)
	}
	m1.stop()
	e.eventually(10*time.Second, "m1 detached from both networks", func() error {
		eps, err := e.apiEndpoints(h1)
		if err != nil {
			return err
		}
		if len(eps) != 0 {
			return fmt.Errorf("h1 still lists %+v", eps)
		}
		return nil
	})
	m2.stop()
}
