package tests

// Helpers for the overlay-wide tests (gossiped records, DNS, proxy ARP,
// IPAM): a shared underlay segment for more than two hosts, DNS queries
// with dig, helper processes, and timed polls.
//
//                     PFX-sw: bridge br0 (the underlay segment)
//            PFX-s1 /       PFX-s2 |        \ PFX-s3       \ PFX-s53
//   PFX-u1 198.18.0.1   PFX-u2 198.18.0.2   PFX-u3 198.18.0.3   eth0 198.18.0.53
//       PFX-h1              PFX-h2              PFX-h3          PFX-ns (optional)
//
//   All underlay links MTU 1500, one /24: every host reaches every other.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// underlaySwitch creates namespace PFX-sw holding bridge br0, the segment
// that threeHosts and attachUnderlay plug links into.
func (e *env) underlaySwitch() *netns {
	e.t.Helper()
	sw := e.newNS("sw")
	e.must("ip", "-n", sw.name, "link", "add", "br0", "type", "bridge")
	e.must("ip", "-n", sw.name, "link", "set", "br0", "up")
	return sw
}

// attachUnderlay plugs a new veth into the switch: ifname in namespace n
// with address addr/24, its peer PFX-sSUFFIX in the switch's bridge.
func (e *env) attachUnderlay(sw, n *netns, ifname, suffix, addr string) {
	e.t.Helper()
	port := e.prefix + "s" + suffix
	e.must("ip", "link", "add", ifname, "netns", n.name, "mtu", "1500", "type", "veth",
		"peer", "name", port, "netns", sw.name, "mtu", "1500")
	e.must("ip", "-n", sw.name, "link", "set", port, "master", "br0", "up")
	e.must("ip", "-n", n.name, "addr", "add", addr+"/24", "dev", ifname)
	e.must("ip", "-n", n.name, "link", "set", ifname, "up")
}

// threeHosts creates hosts h1, h2 and h3 with underlay addresses
// 198.18.0.1-3/24 on one bridged segment, and returns the hosts and the
// switch namespace.
func (e *env) threeHosts() ([]*host, *netns) {
	e.t.Helper()
	sw := e.underlaySwitch()
	var hosts []*host
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("h%d", i)
		h := &host{netns: e.newNS(id), id: id, link: fmt.Sprintf("%su%d", e.prefix, i), addr: fmt.Sprintf("198.18.0.%d", i)}
		e.attachUnderlay(sw, h.netns, h.link, fmt.Sprint(i), h.addr)
		hosts = append(hosts, h)
	}
	return hosts, sw
}

// others returns hosts without h: h's peers in a full mesh.
func others(hosts []*host, h *host) []*host {
	return slices.DeleteFunc(slices.Clone(hosts), func(o *host) bool { return o == h })
}

// kill ends the daemon with SIGKILL, by its pid, and waits for it to exit.
// Cleanup then treats it as stopped.
func (d *daemon) kill() {
	d.e.t.Helper()
	d.exitExpected = true
	if err := syscall.Kill(d.cmd.Process.Pid, syscall.SIGKILL); err != nil && d.running() {
		d.e.t.Fatalf("SIGKILL to daemon %s (pid %d): %v", d.h.id, d.cmd.Process.Pid, err)
	}
	select {
	case <-d.done:
	case <-time.After(termTimeout):
		d.e.t.Fatalf("daemon %s (pid %d) still running %v after SIGKILL", d.h.id, d.cmd.Process.Pid, termTimeout)
	}
}

// statusAddr returns the address (without prefix length) that st lists
// for endpoint name of network, or "".
func statusAddr(st api.Status, network, name string) string {
	for _, ep := range st.Endpoints {
		if ep.Network == network && ep.Name == name {
			a, _, _ := strings.Cut(ep.Address, "/")
			return a
		}
	}
	return ""
}

// digAnswer is what dig printed for one query.
type digAnswer struct {
	status string   // NOERROR, NXDOMAIN, REFUSED, FORMERR, SERVFAIL …
	rdata  []string // the answer section's data, in the order received
	raw    string
}

var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// dig runs `dig +tries=1 +time=2 ARGS` inside namespace n with the answer
// section and header comments only, and returns the status and the
// answer records' data. It fails when dig got no answer at all.
func (e *env) dig(n *netns, args ...string) (digAnswer, error) {
	return e.digWith(n, "dig", args...)
}

// digWith is dig with another client of the same output format (kdig).
func (e *env) digWith(n *netns, client string, args ...string) (digAnswer, error) {
	argv := append([]string{"netns", "exec", n.name, client, "+tries=1", "+time=2", "+noall", "+comments", "+answer"}, args...)
	out, err := command(10*time.Second, "ip", argv...)
	a := digAnswer{raw: out}
	m := digStatus.FindStringSubmatch(out)
	if m == nil {
		if err == nil {
			err = fmt.Errorf("%s %s: no status in output:\n%s", client, strings.Join(args, " "), out)
		}
		return a, err
	}
	a.status = m[1]
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		if f := strings.Fields(line); len(f) >= 5 {
			a.rdata = append(a.rdata, f[len(f)-1])
		}
	}
	return a, nil
}

// digShort runs `dig @server +short EXTRA… NAME` inside n and returns its
// lines. It fails when dig fails (no answer). The name comes last, so
// extra may end in "-x" for a reverse lookup of name.
func (e *env) digShort(n *netns, server, name string, extra ...string) ([]string, error) {
	argv := append([]string{"netns", "exec", n.name, "dig", "@" + server, "+short", "+tries=1", "+time=2"}, extra...)
	argv = append(argv, name)
	out, err := command(10*time.Second, "ip", argv...)
	if err != nil {
		return nil, err
	}
	var lines []string
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) > 0 && strings.HasPrefix(lines[0], ";;") {
		return nil, fmt.Errorf("dig @%s %s +short: %s", server, name, strings.Join(lines, "; "))
	}
	return lines, nil
}

// resolvesTo returns nil when `dig @server name +short` inside n prints
// exactly the addresses want, in any order.
func (e *env) resolvesTo(n *netns, server, name string, want ...string) error {
	got, err := e.digShort(n, server, name)
	if err != nil {
		return err
	}
	if !sameSet(got, want) {
		return fmt.Errorf("dig @%s %s +short in %s: got %q, want %q", server, name, n.name, got, want)
	}
	return nil
}

// hasStatus returns nil when `dig @server EXTRA… name` inside n gets rcode
// status.
func (e *env) hasStatus(n *netns, server, name, status string, extra ...string) error {
	a, err := e.dig(n, append(append([]string{"@" + server}, extra...), name)...)
	if err != nil {
		return err
	}
	if a.status != status {
		return fmt.Errorf("dig @%s %s in %s: status %s with answers %q, want %s", server, name, n.name, a.status, a.rdata, status)
	}
	return nil
}

// sameSet reports whether a and b hold the same strings, ignoring order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// timed polls f every 50 ms until it returns nil or timeout passes, and
// returns how long that took. The fine, fixed step keeps the measured
// time within 50 ms plus one call of f of the true one.
func timed(timeout time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := f()
		if err == nil {
			return time.Since(start), nil
		}
		var p errPermanent
		if errors.As(err, &p) {
			return time.Since(start), p.err
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proc is a helper program the test runs in a namespace (dnsmasq).
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc runs args inside namespace n with output to a log file, and
// stops it (SIGTERM, then SIGKILL, by its pid) in cleanup.
func (e *env) startProc(n *netns, short string, args ...string) *proc {
	e.t.Helper()
	p := &proc{log: filepath.Join(e.dir, fmt.Sprintf("%s-%s.log", n.name, short)), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start %s in %s: %v", args[0], n.name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			select {
			case <-p.done:
				return
			default:
			}
			_ = p.cmd.Process.Signal(sig)
			select {
			case <-p.done:
				return
			case <-time.After(5 * time.Second):
			}
		}
		if e.t.Failed() {
			b, _ := os.ReadFile(p.log)
			e.t.Logf("log of %s in %s:\n%s", args[0], n.name, tail(string(b), 50))
		}
	})
	return p
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// linkMAC returns the MAC address of ifname inside namespace n.
func (e *env) linkMAC(n *netns, ifname string) string {
	e.t.Helper()
	out := e.mustIn(n, "ip", "-o", "link", "show", ifname)
	f := strings.Fields(out)
	if i := slices.Index(f, "link/ether"); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	e.t.Fatalf("no MAC address of %s in %s:\n%s", ifname, n.name, out)
	return ""
}

// startInTurn starts one daemon per host with its config, each once the
// one before lists its endpoints, and returns them.
func (e *env) startInTurn(hosts []*host, confs []hostConf) []*daemon {
	e.t.Helper()
	var ds []*daemon
	for i, h := range hosts {
		cfg := e.writeConfig(h, confs[i])
		var names []string
		for _, ep := range confs[i].endpoints {
			names = append(names, ep.name)
		}
		d := e.startDaemon(h, cfg)
		if err := d.ready(names...); err != nil {
			e.t.Fatalf("daemon %s ready: %v", h.id, err)
		}
		ds = append(ds, d)
	}
	return ds
}

// ready is waitReady that returns its error instead of failing the test.
func (d *daemon) ready(endpoints ...string) error {
	return poll(readyTimeout, func() error {
		if !d.running() {
			return permanent(fmt.Errorf("daemon exited: %v", d.err))
		}
		st, err := d.e.status(d.h)
		if err != nil {
			return err
		}
		if missing := missingEndpoints(st, endpoints); len(missing) > 0 {
			return fmt.Errorf("endpoints %v not listed yet", missing)
		}
		return nil
	})
}
