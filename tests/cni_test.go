package tests

// The CNI plugin driven by cnitool (libcni), as a runtime drives it.
//
//   PFX-h1 (vxwire, blue)                        PFX-h2 (vxwire, blue)
//   PFX-u1 198.18.0.1 ========= veth ========= PFX-u2 198.18.0.2
//     cnitool add → PFX-ct1 (K8S_POD_NAME=ct1)     cnitool add → PFX-ct2 (name = short id)
//
// cnitool runs under `ip netns exec PFX-hN`, so nothing lands in the root
// namespace; NETCONFPATH holds examples/cni/vxwire.conflist pointed at the
// host's socket, CNI_PATH a directory with the vxwire binary as "vxwire".

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// cniHost runs cnitool against one host's daemon.
type cniHost struct {
	e       *env
	h       *host
	tool    string
	netName string // the conflist's name
	confDir string
	binDir  string
}

func (e *env) cniHost(h *host, tool string) *cniHost {
	e.t.Helper()
	c := &cniHost{e: e, h: h, tool: tool, netName: e.prefix + "blue", confDir: filepath.Join(e.dir, "netconf-"+h.id), binDir: e.pluginDir()}
	if err := os.MkdirAll(c.confDir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	conf := e.exampleConflist(c.netName, e.socket(h), "1.1.0")
	if err := os.WriteFile(filepath.Join(c.confDir, "vxwire.conflist"), []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run runs `cnitool CMD NET NETNS` in h's namespace with cniArgs as
// CNI_ARGS, and returns its standard output.
func (c *cniHost) run(cmd string, ns *netns, cniArgs string) (string, error) {
	env := []string{"NETCONFPATH=" + c.confDir, "CNI_PATH=" + c.binDir, "CNI_ARGS=" + cniArgs}
	return c.e.runLogged(cmdTimeout, env, "ip", "netns", "exec", c.h.name, c.tool, cmd, c.netName, ns.path())
}

// add runs cnitool add and decodes its result as a spec 1.x result.
func (c *cniHost) add(ns *netns, cniArgs string) *current.Result {
	c.e.t.Helper()
	out, err := c.run("add", ns, cniArgs)
	if err != nil {
		c.e.t.Fatal(err)
	}
	var res current.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		c.e.t.Fatalf("cnitool add result: %v\n%s", err, out)
	}
	c.e.t.Cleanup(func() { _, _ = c.run("del", ns, cniArgs) })
	return &res
}

// checkResult validates a result against the daemon's endpoint.
func (e *env) checkResult(h *host, ns *netns, name string, res *current.Result) {
	e.t.Helper()
	ep, ok, err := e.apiEndpoint(h, name)
	if err != nil || !ok {
		e.t.Fatalf("endpoint %s on %s: %v, %v", name, h.id, ok, err)
	}
	gw := net.ParseIP(blue.gateway)
	var problems []string
	if res.CNIVersion != "1.1.0" {
		problems = append(problems, "cniVersion "+res.CNIVersion)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" || res.Interfaces[0].Sandbox != ns.path() ||
		!strings.EqualFold(res.Interfaces[0].Mac, ep.MAC) || res.Interfaces[0].Mtu != ep.MTU {
		problems = append(problems, fmt.Sprintf("interfaces %v (endpoint %+v)", res.Interfaces, ep))
	}
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != ep.Address || !res.IPs[0].Gateway.Equal(gw) ||
		res.IPs[0].Interface == nil || *res.IPs[0].Interface != 0 {
		problems = append(problems, fmt.Sprintf("ips %v (endpoint address %s)", res.IPs, ep.Address))
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" || !res.Routes[0].GW.Equal(gw) {
		problems = append(problems, fmt.Sprintf("routes %v", res.Routes))
	}
	if fmt.Sprint(res.DNS.Nameservers) != "["+blue.gateway+"]" || len(res.DNS.Search) == 0 || res.DNS.Search[0] != blue.name {
		problems = append(problems, fmt.Sprintf("dns %+v", res.DNS))
	}
	if len(problems) > 0 {
		e.t.Errorf("result for %s:\n%s", name, strings.Join(problems, "\n"))
	}
	out := e.mustIn(ns, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
	if !strings.Contains(out, ep.Address) {
		e.t.Errorf("%s eth0: %s, want %s", ns.name, out, ep.Address)
	}
}

func TestCNITool(t *testing.T) {
	e := newEnv(t)
	tool := e.cnitool()
	t0 := time.Now()
	h1, h2, d1, _ := e.runtimeHosts()
	c1, c2 := e.cniHost(h1, tool), e.cniHost(h2, tool)
	ct1, ct2 := e.container("ct1"), e.container("ct2")

	t1 := time.Now()
	res1 := c1.add(ct1, "IgnoreUnknown=1;K8S_POD_NAME=ct1")
	res2 := c2.add(ct2, "")
	t.Logf("two ADDs in %v", time.Since(t1).Round(time.Millisecond))
	// cnitool's container id is "cnitool-" and hex; the short id names it.
	var name2 string
	if eps, err := e.apiEndpoints(h2); err != nil || len(eps) != 1 {
		t.Fatalf("h2 endpoints: %+v, %v", eps, err)
	} else {
		name2 = eps[0].Name
		if !strings.HasPrefix(eps[0].ContainerID, "cnitool-") || name2 != eps[0].ContainerID[:12] {
			t.Errorf("h2 endpoint %+v: want the first 12 characters of the container id as name", eps[0])
		}
	}
	e.checkResult(h1, ct1, "ct1", res1)
	e.checkResult(h2, ct2, name2, res2)
	e.eventually(20*time.Second, "ct1 pings "+name2+" by name", func() error {
		_, err := e.in(ct1, "ping", "-c", "1", "-W", "1", name2)
		return err
	})

	for _, c := range []struct {
		h  *cniHost
		ns *netns
	}{{c1, ct1}, {c2, ct2}} {
		if out, err := c.h.run("check", c.ns, ""); err != nil {
			t.Errorf("CHECK %s: %v\n%s", c.ns.name, err, out)
		}
		if out, err := c.h.run("status", c.ns, ""); err != nil {
			t.Errorf("STATUS on %s: %v\n%s", c.h.h.id, err, out)
		}
	}
	// CHECK fails once the interface is gone from the namespace.
	e.mustIn(ct2, "ip", "addr", "flush", "dev", "eth0")
	if out, err := c2.run("check", ct2, ""); err == nil {
		t.Errorf("CHECK after the address was flushed succeeded:\n%s", out)
	}

	// DEL twice on h1.
	for i := range 2 {
		if out, err := c1.run("del", ct1, ""); err != nil {
			t.Fatalf("DEL #%d: %v\n%s", i+1, err, out)
		}
	}
	e.waitDetached(h1, "ct1")

	// DEL after a daemon restart: attach again, restart h1's daemon, DEL.
	c1.add(ct1, "K8S_POD_NAME=ct1")
	if err := d1.stop(); err != nil {
		t.Fatalf("stop h1: %v", err)
	}
	if out, err := c1.run("status", ct1, ""); err == nil {
		t.Errorf("STATUS with the daemon stopped succeeded:\n%s", out)
	}
	d1 = e.startDaemon(h1, filepath.Join(e.dir, "h1.toml"))
	d1.waitReady()
	t2 := time.Now()
	if out, err := c1.run("del", ct1, ""); err != nil {
		t.Fatalf("DEL after restart: %v\n%s", err, out)
	}
	e.waitDetached(h1, "ct1")
	t.Logf("DEL after restart in %v", time.Since(t2).Round(time.Millisecond))

	// GC without valid attachments collects h2's CNI endpoint.
	if out, err := c2.run("gc", ct2, ""); err != nil {
		t.Fatalf("GC: %v\n%s", err, out)
	}
	e.waitDetached(h2, name2)
	t.Logf("total %v", time.Since(t0).Round(time.Millisecond))
}
