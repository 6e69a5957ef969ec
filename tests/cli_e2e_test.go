package tests

// The command line against running daemons: networks created, listed and
// removed with `vxwire network`, containers attached and detached with
// `vxwire attach`/`detach`, the API socket's group check, and the
// Prometheus endpoint.
//
//   PFX-h1 (vxwire, socket h1.sock)              PFX-h2 (vxwire, socket h2.sock)
//   PFX-u1 198.18.0.1/24 ======= veth ======= PFX-u2 198.18.0.2/24
//     |                                           |
//   PFX-g1 eth0 (attach --name g1)              PFX-g2 eth0 (attach --name g2)
//
//   network green: created at run time on h1 (10.88.0.0/24), replicated
//   to h2; neither config file names it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vxwire/vxwire/internal/api"
)

// Exit codes of the vxwire command line that these tests check.
const (
	exitUsage    = 2
	exitConflict = 5
)

// vx runs the vxwire command line with args and returns its standard
// output, standard error and exit code (-1 if it did not exit normally).
func vx(args ...string) (stdout, stderr string, code int) {
	so, se, err := run(cmdTimeout, vxwireBin, args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return so, se, 0
	case errors.As(err, &ee):
		return so, se, ee.ExitCode()
	}
	return so, se + err.Error(), -1
}

// mustVX runs the vxwire command line and fails the test unless it exits 0.
func (e *env) mustVX(args ...string) string {
	e.t.Helper()
	so, se, code := vx(args...)
	if code != 0 {
		e.t.Fatalf("vxwire %s: exit code %d\n%s%s", strings.Join(args, " "), code, so, se)
	}
	return so
}

// noStackTrace fails the test if a command's output looks like a panic.
func (e *env) noStackTrace(what, out string) {
	e.t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "runtime/debug", ".go:"} {
		if strings.Contains(out, s) {
			e.t.Errorf("%s: output contains %q, a stack trace:\n%s", what, s, out)
		}
	}
}

// cliNetworks runs `vxwire network ls --json` against h's daemon.
func (e *env) cliNetworks(h *host) ([]api.Network, error) {
	so, se, code := vx("network", "ls", "--socket", e.socket(h), "--json")
	if code != 0 {
		return nil, fmt.Errorf("vxwire network ls: exit code %d\n%s%s", code, so, se)
	}
	var ns []api.Network
	if err := json.Unmarshal([]byte(so), &ns); err != nil {
		return nil, permanent(fmt.Errorf("vxwire network ls --json: %w\n%s", err, so))
	}
	return ns, nil
}

// findNetwork returns the network named name in ns.
func findNetwork(ns []api.Network, name string) (api.Network, bool) {
	i := slices.IndexFunc(ns, func(n api.Network) bool { return n.Name == name })
	if i < 0 {
		return api.Network{}, false
	}
	return ns[i], true
}

// cliAttach attaches container c to network as name through h's daemon
// with `vxwire attach --json` and returns the endpoint it printed.
func (e *env) cliAttach(h *host, network string, c *netns, name string) api.Endpoint {
	e.t.Helper()
	out := e.mustVX("attach", "--socket", e.socket(h), "--json", "--network", network, "--netns", c.path(), "--name", name)
	var ep api.Endpoint
	if err := json.Unmarshal([]byte(out), &ep); err != nil {
		e.t.Fatalf("vxwire attach --json: %v\n%s", err, out)
	}
	if ep.Network != network || ep.Name != name || ep.NetNS != c.path() {
		e.t.Fatalf("vxwire attach --json: network %q name %q netns %q, want %q %q %q",
			ep.Network, ep.Name, ep.NetNS, network, name, c.path())
	}
	return ep
}

func TestCLINetworkCreateAttach(t *testing.T) {
	e := newEnv(t, "dig")
	h1, h2 := e.twoHosts()
	g1, g2 := e.container("g1"), e.container("g2")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}}))
	d1.waitReady()
	d2.waitReady()
	s1, s2 := e.socket(h1), e.socket(h2)

	// Bad command lines: exit code 2, a one-line message naming the
	// problem, no stack trace, and nothing created.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "--socket", s1, "green"}, "--subnet"},
		{[]string{"network", "create", "--socket", s1, "--subnet", "10.88.0.0/24", "--vni", "abc", "green"}, "vni"},
	} {
		so, se, code := vx(bad.args...)
		what := "vxwire " + strings.Join(bad.args, " ")
		if code != exitUsage {
			t.Errorf("%s: exit code %d, want %d (usage)\n%s%s", what, code, exitUsage, so, se)
		}
		if !strings.HasPrefix(se, "vxwire: ") || !strings.Contains(se, bad.want) {
			t.Errorf("%s: standard error %q, want a usage message starting \"vxwire: \" that names %s", what, se, bad.want)
		}
		e.noStackTrace(what, so+se)
	}
	if ns, err := e.cliNetworks(h1); err != nil {
		t.Fatal(err)
	} else if _, ok := findNetwork(ns, "green"); ok {
		t.Fatalf("after the refused command lines, h1 lists network green: %+v", ns)
	}

	// Created on h1, the network replicates to h2.
	if out := e.mustVX("network", "create", "--socket", s1, "--subnet", "10.88.0.0/24", "green"); strings.TrimSpace(out) != "green" {
		t.Errorf("vxwire network create printed %q, want the name green", out)
	}
	for _, h := range []*host{h1, h2} {
		e.eventually(readyTimeout, h.id+" lists network green", func() error {
			ns, err := e.cliNetworks(h)
			if err != nil {
				return err
			}
			n, ok := findNetwork(ns, "green")
			if !ok {
				return fmt.Errorf("not listed: %+v", ns)
			}
			if n.Subnet != "10.88.0.0/24" || n.Source != "api" {
				return permanent(fmt.Errorf("green listed with subnet %q source %q, want 10.88.0.0/24 and api", n.Subnet, n.Source))
			}
			return nil
		})
	}

	ep2 := e.cliAttach(h2, "green", g2, "g2")
	ep1 := e.cliAttach(h1, "green", g1, "g1")
	a1, _, _ := strings.Cut(ep1.Address, "/")
	a2, _, _ := strings.Cut(ep2.Address, "/")
	if a1 == a2 || !strings.HasPrefix(a1, "10.88.0.") || !strings.HasPrefix(a2, "10.88.0.") {
		t.Fatalf("attached g1 at %q and g2 at %q; want two different addresses in 10.88.0.0/24", ep1.Address, ep2.Address)
	}
	e.mustPing(g1, a2)
	e.mustPing(g2, a1)
	e.eventually(readyTimeout, "g1 resolves g2 at the gateway", func() error {
		return e.resolvesTo(g1, ep1.Gateway, "g2", a2)
	})
	e.eventually(reachTimeout, "ping g2 by name from g1", func() error {
		_, err := e.in(g1, "ping", "-c", "1", "-W", "1", "g2")
		return err
	})

	// A network in use cannot be removed.
	so, se, code := vx("network", "rm", "--socket", s1, "green")
	if code != exitConflict {
		t.Errorf("vxwire network rm green with g1 and g2 attached: exit code %d, want %d (conflict)\n%s%s", code, exitConflict, so, se)
	}
	e.noStackTrace("vxwire network rm green", so+se)
	if ns, err := e.cliNetworks(h1); err != nil {
		t.Fatal(err)
	} else if _, ok := findNetwork(ns, "green"); !ok {
		t.Fatalf("after the refused removal, h1 no longer lists green: %+v", ns)
	}

	e.mustVX("detach", "--socket", s2, "--network", "green", "--name", "g2")
	e.mustVX("detach", "--socket", s1, "--network", "green", "--name", "g1")
	e.waitDetached(h1, "g1")
	e.waitDetached(h2, "g2")
	// Removal waits until h1 has learnt that h2's endpoint is gone, if it
	// checks the whole overlay.
	e.eventually(readyTimeout, "vxwire network rm green after the detaches", func() error {
		so, se, code := vx("network", "rm", "--socket", s1, "green")
		switch code {
		case 0:
			return nil
		case exitConflict:
			return fmt.Errorf("exit code %d\n%s%s", code, so, se)
		}
		return permanent(fmt.Errorf("exit code %d\n%s%s", code, so, se))
	})
	for _, h := range []*host{h1, h2} {
		e.eventually(readyTimeout, h.id+" no longer lists green", func() error {
			ns, err := e.cliNetworks(h)
			if err != nil {
				return err
			}
			if _, ok := findNetwork(ns, "green"); ok {
				return fmt.Errorf("still listed: %+v", ns)
			}
			return nil
		})
	}
}

func TestAPISocketRefusesOthers(t *testing.T) {
	e := newEnv(t, "setpriv", "groupadd", "groupdel")
	group := e.prefix + "api"
	e.must("groupadd", group)
	t.Cleanup(func() {
		if _, err := command(cmdTimeout, "groupdel", group); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := e.twoHosts()
	d := e.startDaemon(h1, e.writeConfig(h1, hostConf{apiGroup: group}))
	d.waitReady()
	sock := e.socket(h1)

	// The daemon gives the socket to the group with mode 0660.
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("api socket mode %v, want 0660", fi.Mode().Perm())
	}

	// Let nobody reach and connect to the socket, and run a copy of the
	// binary nobody may execute, so that only the daemon's own check
	// stands in the way.
	for _, dir := range []string{filepath.Dir(e.dir), e.dir} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(e.dir, "vxwire-client")
	b, err := os.ReadFile(vxwireBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}

	const nobody = "65534"
	so, se, err := run(cmdTimeout, "setpriv", "--reuid", nobody, "--regid", nobody, "--clear-groups",
		bin, "status", "--socket", sock)
	if err == nil {
		t.Errorf("vxwire status as uid %s without group %s succeeded; want it refused\n%s", nobody, group, so)
	} else if !strings.Contains(se, "permission denied") {
		t.Errorf("vxwire status as uid %s without group %s: standard error %q, want \"permission denied\"", nobody, group, se)
	}
	e.noStackTrace("vxwire status refused", so+se)

	so, se, err = run(cmdTimeout, "setpriv", "--reuid", nobody, "--regid", nobody, "--groups", g.Gid,
		bin, "status", "--socket", sock, "--json")
	if err != nil {
		t.Fatalf("vxwire status as uid %s in group %s (%s): %v", nobody, group, g.Gid, err)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(so), &st); err != nil {
		t.Fatalf("vxwire status --json as a member of %s: %v\n%s%s", group, err, so, se)
	}
	if !d.running() {
		t.Fatalf("daemon exited: %v", d.err)
	}
}

// metricsAddr is where TestMetrics' daemon serves Prometheus metrics,
// inside its host namespace.
const metricsAddr = "127.0.0.1:9477"

// scrape fetches http://ADDR/metrics from inside namespace n and parses
// it as the Prometheus text format.
func scrape(n *netns, addr string) (map[string]*dto.MetricFamily, error) {
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var c net.Conn
		err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, a)
			return err
		})
		return c, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, permanent(fmt.Errorf("metrics do not parse as the Prometheus text format: %w\n%s", err, body))
	}
	return mfs, nil
}

// metricValue returns the value of the sample of family name whose labels
// include labels (pairs of name and value).
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) (float64, error) {
	mf, ok := mfs[name]
	if !ok {
		return 0, fmt.Errorf("no metric family %s", name)
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), nil
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), nil
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), nil
		}
		return 0, fmt.Errorf("%s%v is neither a counter nor a gauge", name, labels)
	}
	return 0, fmt.Errorf("%s has no sample with labels %v", name, labels)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers: []*host{h2}, networks: []netConf{blue}, metrics: metricsAddr,
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}},
	}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{
		peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}},
	}))
	d1.waitReady("c1")
	d2.waitReady("c2")
	e.mustPing(c1, "10.77.0.20")

	type peerFrames struct{ rx, tx float64 }
	read := func(mfs map[string]*dto.MetricFamily) (peerFrames, error) {
		var f peerFrames
		var err error
		if f.rx, err = metricValue(mfs, "vxwire_peer_frames_total", "peer", "h2", "direction", "rx"); err != nil {
			return f, err
		}
		f.tx, err = metricValue(mfs, "vxwire_peer_frames_total", "peer", "h2", "direction", "tx")
		return f, err
	}
	var mfs map[string]*dto.MetricFamily
	e.eventually(readyTimeout, "metrics served at "+metricsAddr+" in "+h1.name, func() error {
		var err error
		mfs, err = scrape(h1.netns, metricsAddr)
		return err
	})
	before, err := read(mfs)
	if err != nil {
		t.Fatal(err)
	}
	if before.rx == 0 || before.tx == 0 {
		t.Errorf("after a ping across hosts, vxwire_peer_frames_total for h2 is rx %v tx %v; want both above 0", before.rx, before.tx)
	}
	if n, err := metricValue(mfs, "vxwire_endpoints", "network", "blue"); err != nil {
		t.Error(err)
	} else if n != 1 {
		t.Errorf("vxwire_endpoints{network=\"blue\"} = %v, want 1", n)
	}
	if v, err := metricValue(mfs, "vxwire_host_info", "host", "h1"); err != nil {
		t.Error(err)
	} else if v != 1 {
		t.Errorf("vxwire_host_info{host=\"h1\"} = %v, want 1", v)
	}

	const pings = 20
	out, err := e.in(c1, "ping", "-c", strconv.Itoa(pings), "-i", "0.05", "-W", "1", "10.77.0.20")
	if err != nil || !strings.Contains(out, fmt.Sprintf(" %d received", pings)) {
		t.Fatalf("ping -c %d from c1 to c2: want every reply: %v\n%s", pings, err, out)
	}

	mfs, err = scrape(h1.netns, metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	after, err := read(mfs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vxwire_peer_frames_total{peer=\"h2\"}: rx %v -> %v, tx %v -> %v", before.rx, after.rx, before.tx, after.tx)
	if after.tx < before.tx+pings {
		t.Errorf("vxwire_peer_frames_total{peer=\"h2\",direction=\"tx\"} went from %v to %v across %d pings; want a rise of at least %d",
			before.tx, after.tx, pings, pings)
	}
	if after.rx < before.rx+pings {
		t.Errorf("vxwire_peer_frames_total{peer=\"h2\",direction=\"rx\"} went from %v to %v across %d replies; want a rise of at least %d",
			before.rx, after.rx, pings, pings)
	}
	if n, err := metricValue(mfs, "vxwire_endpoints", "network", "blue"); err != nil {
		t.Error(err)
	} else if n != 1 {
		t.Errorf("vxwire_endpoints{network=\"blue\"} = %v, want 1", n)
	}
}
