package tests

//   PFX-h1 198.18.0.1 ===== veth ===== PFX-h2 198.18.0.2
//   c1   10.77.0.10 (client)           c2   10.77.0.20 (client)
//   web1 10.77.0.11 (alias web)        web2 10.77.0.21 (alias web)
//
//  blue/web is a VIP service declared twice: by h1's config file
//  ([[service]]) and through the API on h2 (`vxwire service add`), which
//  the log replicates (on h1 the file's declaration is the one applied).

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestVIPClusterWide checks that a VIP service has one virtual IP on
// every host: `dig web` in a container of each host returns the same
// single address, `vxwire service ls` shows it on both, and a container
// on h2 that connects to the address h1's container resolved reaches the
// replicas of both hosts. Before this change each host gave the service
// a VIP of its own block, and the test failed at the first check: dig
// web gave 10.77.0.2 in c1 and 10.77.0.16 in c2, and h2's switch and
// proxy ARP knew only h2's own VIP. After the API
// service is removed on h2, h1 (whose config file still declares it)
// keeps the same VIP, and c1 still reaches both replicas through it (as
// after a restart of h2, which finds the VIP in its replica); once
// h1's file drops it too, the host that allocated the VIP releases it.
func TestVIPClusterWide(t *testing.T) {
	e := newEnv(t, "socat", "curl", "dig")
	h1, h2 := e.twoHosts()
	c1, web1, c2, web2 := e.container("c1"), e.container("web1"), e.container("c2"), e.container("web2")
	conf1 := hostConf{peers: []*host{h2}, networks: []netConf{blue}, endpoints: []epConf{
		{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"},
		{network: "blue", name: "web1", ns: web1, addr: "10.77.0.11", aliases: []string{"web"}},
	}}
	d1 := e.startDaemon(h1, e.file("h1.toml", e.render(h1, conf1)+serviceConf("blue", "web")))
	cfg2 := e.file("h2.toml", e.render(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue}, endpoints: []epConf{
		{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"},
		{network: "blue", name: "web2", ns: web2, addr: "10.77.0.21", aliases: []string{"web"}},
	}}))
	d2 := e.startDaemon(h2, cfg2)
	d1.waitReady("c1", "web1")
	d2.waitReady("c2", "web2")
	e.webServer(web1, "web1")
	e.webServer(web2, "web2")
	e.eventually(pubTimeout, "the log has a leader", func() error {
		_, se, code := vx("service", "add", "--socket", e.socket(h2), "--network", "blue", "web")
		if code != 0 {
			return fmt.Errorf("vxwire service add on h2: exit code %d: %s", code, se)
		}
		return nil
	})

	// One address on both hosts, by DNS and by the API.
	vip := ""
	e.eventually(dnsTimeout, "web resolves to one VIP on both hosts", func() error {
		a1, err := e.digShort(c1, blue.gateway, "web")
		if err != nil {
			return err
		}
		a2, err := e.digShort(c2, blue.gateway, "web")
		if err != nil {
			return err
		}
		if len(a1) != 1 || len(a2) != 1 || a1[0] != a2[0] {
			return fmt.Errorf("dig web: %q in c1 (h1), %q in c2 (h2), want one and the same address", a1, a2)
		}
		for _, h := range []*host{h1, h2} {
			if err := e.serviceAt(h, "web", a1[0], 2); err != nil {
				return err
			}
		}
		vip = a1[0]
		return nil
	})
	if vip == "10.77.0.11" || vip == "10.77.0.21" {
		t.Fatalf("web resolves to a replica's address %s", vip)
	}
	t.Logf("web has the VIP %s on both hosts", vip)

	// The probe: c2 (on h2) connects to the address c1 (on h1) resolved.
	e.mustPing(c2, vip)
	got, err := e.fetchN(c2, "http://"+vip+"/", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got["web1"] < 30 || got["web2"] < 30 || got["web1"]+got["web2"] != 100 {
		t.Errorf("100 connections from c2 (h2) to %s: %v, want both replicas and no failures", vip, got)
	}
	got, err = e.fetchN(c1, "http://web/", 40)
	if err != nil || got["web1"] < 10 || got["web2"] < 10 || got["web1"]+got["web2"] != 40 {
		t.Errorf("40 connections from c1 (h1) to http://web/: %v (%v), want both replicas", got, err)
	}

	// h2 restarts: it knows the VIP from its replica of the log at once.
	if err := d2.stop(); err != nil {
		t.Fatal(err)
	}
	d2 = e.startDaemon(h2, cfg2)
	d2.waitReady("c2", "web2")
	e.eventually(dnsTimeout, "h2 has the VIP again after a restart", func() error {
		if err := e.serviceAt(h2, "web", vip, 2); err != nil {
			return err
		}
		return e.resolvesTo(c2, blue.gateway, "web", vip)
	})
	got, err = e.fetchN(c2, "http://web/", 40)
	if err != nil || got["web1"] < 10 || got["web2"] < 10 || got["web1"]+got["web2"] != 40 {
		t.Errorf("40 connections from c2 to http://web/ after h2 restarted: %v (%v), want both replicas", got, err)
	}

	// The API service goes; h1's config file still declares it, and the
	// VIP stays where it was (whichever host allocated it).
	e.mustVX("service", "rm", "--socket", e.socket(h2), "--network", "blue", "web")
	e.eventually(dnsTimeout, "h2 no longer applies web", func() error {
		ss, err := e.cliServices(h2)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.Name == "web" {
				return fmt.Errorf("h2 still lists %+v", s)
			}
		}
		return e.serviceAt(h1, "web", vip, 2)
	})
	got, err = e.fetchN(c1, "http://web/", 40)
	if err != nil || got["web1"] < 10 || got["web2"] < 10 || got["web1"]+got["web2"] != 40 {
		t.Errorf("40 connections from c1 to http://web/ after the API service went: %v (%v), want both replicas", got, err)
	}
	if err := e.resolvesTo(c1, blue.gateway, "web", vip); err != nil {
		t.Error(err)
	}

	// h1 drops the table too: no host applies the service, so the host
	// that allocated the VIP releases it, and web is plain round robin.
	e.writeConfig(h1, conf1)
	d1.signal(syscall.SIGHUP)
	e.eventually(dnsTimeout, "the VIP is released", func() error {
		for _, d := range []*daemon{d1, d2} {
			for l := range strings.Lines(d.logText()) {
				if strings.Contains(l, "virtual IP released") && slices.Contains(strings.Fields(l), "vip="+vip) {
					return e.resolvesTo(c1, blue.gateway, "web", "10.77.0.11", "10.77.0.21")
				}
			}
		}
		return fmt.Errorf("no host logged the release of %s", vip)
	})
	for _, d := range []*daemon{d1, d2} {
		for l := range strings.Lines(d.logText()) {
			if strings.Contains(l, "virtual IP") {
				t.Logf("%s: %s", d.h.id, strings.TrimSpace(l))
			}
		}
	}
}

// serviceAt returns nil when h lists service name with the address vip
// and n endpoints.
func (e *env) serviceAt(h *host, name, vip string, n int) error {
	ss, err := e.cliServices(h)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if s.Name == name && s.Error == "" {
			if s.Address != vip || s.Endpoints != n {
				return fmt.Errorf("%s lists %s with address %q and %d endpoints, want %s and %d", h.id, name, s.Address, s.Endpoints, vip, n)
			}
			return nil
		}
	}
	return fmt.Errorf("%s does not apply service %s: %+v", h.id, name, ss)
}
