package tests

//   PFX-h1 198.18.0.1 ===== veth ===== PFX-h2 198.18.0.2
//   c1   10.77.0.10 (client)           web2 10.77.0.100 (alias web, attached by the API)
//   web1 10.77.0.11 (alias web)
//   red: r1 10.78.0.11 (adversary tests)
//
//  [[service]] blue/web vip = true on both hosts. Each web container runs
//  socat on :80 answering "NAME CLIENT-ADDRESS" and logging the client.

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// serviceConf is a [[service]] table.
func serviceConf(network, name string) string {
	return fmt.Sprintf("\n[[service]]\nnetwork = %q\nname = %q\nvip = true\n", network, name)
}

// vipTopo is the topology of the VIP tests.
type vipTopo struct {
	h1, h2         *host
	c1, web1, web2 *netns
	r1             *netns
	log1, log2     string
	vip            string
}

// vipCluster starts the VIP topology, waits until c1 resolves web to a
// VIP, and returns it.
func (e *env) vipCluster() vipTopo {
	e.t.Helper()
	var v vipTopo
	v.h1, v.h2 = e.twoHosts()
	v.c1, v.web1, v.web2, v.r1 = e.container("c1"), e.container("web1"), e.container("web2"), e.container("r1")
	c1 := hostConf{peers: []*host{v.h2}, networks: []netConf{blue, red}, endpoints: []epConf{
		{network: "blue", name: "c1", ns: v.c1, addr: "10.77.0.10"},
		{network: "blue", name: "web1", ns: v.web1, addr: "10.77.0.11", aliases: []string{"web"}},
		{network: "red", name: "r1", ns: v.r1, addr: "10.78.0.11"},
	}}
	d1 := e.startDaemon(v.h1, e.file("h1.toml", e.render(v.h1, c1)+serviceConf("blue", "web")))
	d2 := e.startDaemon(v.h2, e.file("h2.toml", e.render(v.h2, hostConf{peers: []*host{v.h1}, networks: []netConf{blue, red}})+serviceConf("blue", "web")))
	d1.waitReady("c1", "web1", "r1")
	d2.waitReady()
	v.log1, v.log2 = e.webServer(v.web1, "web1"), e.webServer(v.web2, "web2")
	e.mustVX("attach", "--socket", e.socket(v.h2), "--network", "blue", "--netns", v.web2.path(),
		"--name", "web2", "--ip", "10.77.0.100", "--alias", "web")
	e.eventually(dnsTimeout, "web is a VIP", func() error {
		ss, err := e.cliServices(v.h1)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.Name == "web" && s.Address != "" && s.Endpoints == 2 {
				v.vip = s.Address
				return e.resolvesTo(v.c1, blue.gateway, "web", v.vip)
			}
		}
		return fmt.Errorf("service ls on h1: %+v", ss)
	})
	return v
}

// waitServiceEndpoints waits until h lists service name with n endpoints,
// and returns how long that took.
func (e *env) waitServiceEndpoints(h *host, name string, n int) time.Duration {
	e.t.Helper()
	took, err := timed(dnsTimeout, func() error {
		ss, err := e.cliServices(h)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.Name == name && s.Endpoints == n {
				return nil
			}
		}
		return fmt.Errorf("%s does not list %d endpoints of %s: %+v", h.id, n, name, ss)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return took
}

// cliServices returns `vxwire service ls --json` on h.
func (e *env) cliServices(h *host) ([]api.Service, error) {
	so, se, code := vx("service", "ls", "--socket", e.socket(h), "--json")
	if code != 0 {
		return nil, fmt.Errorf("vxwire service ls: exit code %d\n%s%s", code, so, se)
	}
	var ss []api.Service
	if err := json.Unmarshal([]byte(so), &ss); err != nil {
		return nil, permanent(fmt.Errorf("vxwire service ls --json: %w\n%s", err, so))
	}
	return ss, nil
}

// TestVIPService checks a VIP service end to end: web resolves to one
// virtual IP and tasks.web to both replicas; a container's 100
// connections to web reach both, and the servers log the container's own
// address; after one replica detaches, every new connection succeeds.
// The VIP answers ping while a replica is attached (before, no ping to a
// VIP was ever answered; TestVIPEcho in tunnel checks that a VIP without
// replicas stays silent).
func TestVIPService(t *testing.T) {
	e := newEnv(t, "socat", "curl", "dig")
	v := e.vipCluster()
	if v.vip == "10.77.0.11" || v.vip == "10.77.0.100" {
		t.Fatalf("web resolves to a replica's address %s", v.vip)
	}
	// Both hosts declare web in their files and start together: each
	// allocates a VIP before the log has a leader, and they settle on the
	// one committed first (TestVIPClusterWide checks it from containers).
	e.eventually(dnsTimeout, "h2 has the same VIP", func() error { return e.serviceAt(v.h2, "web", v.vip, 2) })
	e.eventually(dnsTimeout, "tasks.web lists both replicas", func() error {
		return e.resolvesTo(v.c1, blue.gateway, "tasks.web", "10.77.0.11", "10.77.0.100")
	})
	e.mustPing(v.c1, v.vip)

	got, err := e.fetchN(v.c1, "http://web/", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got["web1"] < 30 || got["web2"] < 30 || got["web1"]+got["web2"] != 100 {
		t.Errorf("100 connections to http://web/ (%s): %v, want both replicas and no failures", v.vip, got)
	}
	t.Logf("100 connections to the VIP %s: %v", v.vip, got)
	for _, log := range []string{v.log1, v.log2} {
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Fields(string(b)); len(lines) == 0 || strings.Trim(strings.ReplaceAll(string(b), "10.77.0.10\n", ""), "\n") != "" {
			t.Errorf("%s logged clients %q, want only c1's own address 10.77.0.10", log, b)
		}
	}

	// Direct connections to a replica right after the VIP ones work: a
	// direct flow on a VIP flow's ports ends the VIP flow, so its replies
	// keep the replica's address (TestVIPRewrite in tunnel reuses the
	// ports on purpose; here the kernel picks them, and tests/bench/
	// publish.sh, with thousands of connections, did hit the reuse).
	got, err = e.fetchN(v.c1, "http://10.77.0.11/", 100)
	if err != nil || got["web1"] != 100 {
		t.Errorf("100 direct connections to web1 after the VIP ones: %v (%v)", got, err)
	}

	// web2 detaches; once h1 knows, every new connection succeeds.
	e.mustVX("detach", "--socket", e.socket(v.h2), "--network", "blue", "--name", "web2")
	took := e.waitServiceEndpoints(v.h1, "web", 1)
	t.Logf("h1 dropped web2 from the service %v after the detach", took)
	got, err = e.fetchN(v.c1, "http://web/", 50)
	if err != nil || got["web1"] != 50 {
		t.Errorf("50 connections after web2 left: %v (%v), want all to web1", got, err)
	}
	e.mustPing(v.c1, v.vip)
}
