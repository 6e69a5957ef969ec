package tests

// A laptop joins the overlay without root: its daemon runs as an ordinary
// user made by the test, with no capability, in a namespace the root
// harness owns (topology in rootless_harness_test.go). h1 runs as root.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// lapConf is the laptop's config file: no state_dir and no api_socket, so
// rootless mode's defaults apply.
type lapConf struct {
	peer      *host
	peerKey   string // the peer's public key; "": plain only
	key       string // the laptop's private key file; "": none
	net       string // the [[network]] table
	extraHost string // more [host] keys
	extra     string // more tables
}

func (e *env) renderLap(u *testUser, lap *host, c lapConf) string {
	secret, err := os.ReadFile(e.clusterSecret())
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[host]\nname = %q\naddress = %q\nsecret_file = %q\ndns_upstream = [\"198.18.0.1\"]\n",
		lap.id, lap.addr, u.file(e, "cluster.secret", string(secret)))
	if c.key != "" {
		fmt.Fprintf(&b, "private_key_file = %q\nwg_name = %q\n", c.key, e.prefix+"wl")
	}
	b.WriteString(c.extraHost)
	fmt.Fprintf(&b, "\n[[peer]]\nname = %q\naddress = %q\n", c.peer.id, c.peer.addr)
	if c.peerKey != "" {
		fmt.Fprintf(&b, "public_key = %q\n", c.peerKey)
	}
	b.WriteString(c.net)
	b.WriteString(c.extra)
	return b.String()
}

// lapBlue is network blue in the laptop's config.
const lapBlue = "\n[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\n"

// rootlessBlue is rootlessPair on network blue: h1 runs c1 at 10.77.0.10,
// and the laptop's config has blue followed by extra.
func (e *env) rootlessBlue(u *testUser, extra string) (h1, lap *host, c1 *netns, dl *daemon) {
	e.t.Helper()
	h1, lap, c1, _, dl = e.rootlessPair(u, func(h1, _ *host) lapConf {
		return lapConf{peer: h1, net: lapBlue + extra}
	}, func(h1, lap *host, c1 *netns) string {
		return e.render(h1, hostConf{peers: []*host{lap}, networks: []netConf{blue},
			endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}}})
	})
	return h1, lap, c1, dl
}

// rootlessPair starts h1 as root with container c1 on network n, and the
// laptop's rootless daemon with lc; it waits until the laptop answers and
// checks that it holds no capability and uses the user's directories.
func (e *env) rootlessPair(u *testUser, lc func(h1, lap *host) lapConf, h1conf func(h1, lap *host, c1 *netns) string) (h1, lap *host, c1 *netns, d1, dl *daemon) {
	e.t.Helper()
	h1, lap = e.twoHosts()
	lap.id = "lap"
	c1 = e.container("c1")
	d1 = e.startDaemon(h1, e.file("h1.toml", h1conf(h1, lap, c1)))
	d1.waitReady("c1")
	dl = e.startRootless(u, lap, u.file(e, "lap.toml", e.renderLap(u, lap, lc(h1, lap))))
	st := e.waitUserReady(u, dl)
	e.checkUnprivileged(u, dl)
	if !st.Rootless {
		e.t.Errorf("status of the laptop does not say rootless: %+v", st)
	}
	for _, p := range []string{
		filepath.Join(u.home, ".local/state/vxwire"),
		filepath.Join(u.runtime, "vxwire/vxwire.sock"),
	} {
		fi, err := os.Stat(p)
		if err != nil {
			e.t.Fatalf("rootless default %s: %v", p, err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != u.uid {
			e.t.Errorf("%s belongs to uid %d, not the user's %d", p, st.Uid, u.uid)
		}
	}
	return h1, lap, c1, d1, dl
}

// waitLapSees polls the laptop (as the user) until it lists endpoint name
// of host on network, with address addr: records came over gossip.
func (e *env) waitLapSees(u *testUser, lap *host, network, name, host, addr string) {
	e.t.Helper()
	e.eventually(reachTimeout, "the laptop lists "+name, func() error {
		out, _, err := u.run(lap.netns, vxwireBin, "endpoint", "ls", "--all", "--json")
		if err != nil {
			return err
		}
		var eps []api.Endpoint
		if err := json.Unmarshal([]byte(out), &eps); err != nil {
			return permanent(fmt.Errorf("%w: %s", err, out))
		}
		for _, ep := range eps {
			if ep.Network == network && ep.Name == name && ep.Host == host && strings.HasPrefix(ep.Address, addr+"/") {
				return nil
			}
		}
		return fmt.Errorf("not listed: %s", out)
	})
}

// waitPeerRx polls the laptop's status until it has received frames from
// peer h1 (and, with wg, over a completed WireGuard handshake). c1 keeps
// asking ARP for an absent address meanwhile: the broadcast is flooded
// to every host of the network, the laptop included.
func (e *env) waitPeerRx(u *testUser, lap *host, c1 *netns, absent string, wg bool) api.PeerStatus {
	e.t.Helper()
	var got api.PeerStatus
	e.eventually(reachTimeout, "frames from h1 reach the laptop", func() error {
		e.in(c1, "ping", "-c", "1", "-W", "1", absent)
		st, err := e.userStatus(u, lap)
		if err != nil {
			return err
		}
		for _, p := range st.Peers {
			if p.Name != "h1" {
				continue
			}
			got = p
			if p.Counters.RxFrames == 0 {
				return fmt.Errorf("no frames from h1 yet: %+v", p.Counters)
			}
			if wg && (p.WireGuard == nil || p.WireGuard.LastHandshake.IsZero() || p.WireGuard.RxBytes == 0) {
				return fmt.Errorf("no wireguard traffic from h1 yet: %+v", p.WireGuard)
			}
			return nil
		}
		return permanent(fmt.Errorf("status lists no peer h1: %+v", st.Peers))
	})
	return got
}

// TestRootlessLaptopJoins checks that a daemon with no capability, run by
// an ordinary user with no config but the cluster's, joins a plain
// network of a root host: gossip brings it h1's container, the replicated
// log takes a network the user creates, and VXLAN from h1 reaches it.
func TestRootlessLaptopJoins(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd")
	u := e.newUser()
	h1, lap, c1, _ := e.rootlessBlue(u, "")
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")

	// The user creates a network; it commits with h1's vote and reaches h1.
	if out, se, err := u.run(lap.netns, vxwireBin, "network", "create", "--subnet", "10.91.0.0/24", "green"); err != nil {
		t.Fatalf("network create as the user: %v\n%s%s", err, out, se)
	}
	e.eventually(reachTimeout, "h1 lists green", func() error {
		out, err := command(cmdTimeout, vxwireBin, "network", "ls", "--socket", e.socket(h1))
		if err != nil || !strings.Contains(out, "green") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	e.waitPeerRx(u, lap, c1, "10.77.0.99", false)
}

// TestRootlessLaptopEncrypted is the same over an encrypted network: the
// laptop's WireGuard listens on the default port 51820 (at or above 1024)
// with its UAPI socket in $XDG_RUNTIME_DIR, and completes handshakes with
// h1 when h1 floods ARP into the network; its underlay carries the
// network only as WireGuard.
func TestRootlessLaptopEncrypted(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd", "tshark")
	u := e.newUser()
	lapKey := u.genKey(e, "lap")
	var h1e *encHost
	sec := "\n[[network]]\nname = \"sec\"\nvni = 4000\nsubnet = \"10.79.0.0/24\"\nencrypted = true\n"
	var h1addr string
	_, lap, c1, _, _ := e.rootlessPair(u, func(h1, lap *host) lapConf {
		h1addr = h1.addr
		return lapConf{peer: h1, peerKey: h1e.key.pub, key: lapKey.file, net: sec}
	}, func(h1, lap *host, c1 *netns) string {
		h1e = e.withKey(h1)
		lapE := &encHost{host: lap, key: wgKey{pub: lapKey.pub}, tunnel: derivedTunnel(lap.addr)}
		return e.renderEnc(h1e, encConf{peers: []*encHost{lapE}, networks: []encNetwork{{netConf: secNet, encrypted: true}},
			endpoints: []epConf{{network: "sec", name: "c1", ns: c1, addr: "10.79.0.10"}}})
	})
	sock := filepath.Join(u.runtime, "wireguard", e.prefix+"wl.sock")
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the laptop's UAPI socket: %v", err)
	}
	e.waitLapSees(u, lap, "sec", "c1", "h1", "10.79.0.10")
	capt := e.startCapture(lap.netns, lap.link, "udp port 4789 or udp port 51820")
	p := e.waitPeerRx(u, lap, c1, "10.79.0.99", true)
	t.Logf("laptop's view of h1: %+v, wireguard %+v", p.Counters, *p.WireGuard)

	// On the laptop's underlay, the network's frames are WireGuard data
	// from h1, never VXLAN in the clear.
	rows := capt.captureUntil("WireGuard data from h1", func(rows [][]string) bool {
		return slices.ContainsFunc(rows, func(r []string) bool { return r[0] == h1addr && r[1] == "4" })
	}, "ip.src", "wg.type", "udp.dstport")
	wire, err := capt.decodeAs("ip.src", "wg.type", "udp.dstport", "vxlan.vni")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range wire {
		if r[1] == "" || r[2] == "4789" || r[3] != "" {
			t.Errorf("frame %d on the laptop's underlay is not WireGuard: %q", i+1, r)
		}
	}
	t.Logf("laptop's underlay: %d frames, all WireGuard", len(rows))
}

// TestRootlessBadInput checks what an unprivileged daemon cannot do: a
// privileged port or a /var/run path is refused with the file, line and
// what is missing; a reload asking for one is refused while the daemon
// runs on; a container namespace the user does not own is reported as not
// attached, naming the capability, while beside it gossip and the user's
// API keep working.
func TestRootlessBadInput(t *testing.T) {
	e := newEnv(t, "setpriv", "useradd")
	u := e.newUser()
	cx := e.container("cx") // root's namespace, not the user's
	cxConf := fmt.Sprintf("\n[[endpoint]]\nnetwork = \"blue\"\nname = \"cx\"\nnetns = %q\n", cx.path())
	h1, lap, _, dl := e.rootlessBlue(u, cxConf)

	// The namespace the user does not own: not attached, with the line
	// of its netns key and the missing capability; the daemon runs.
	out, se, err := u.run(lap.netns, vxwireBin, "endpoint", "ls")
	for _, want := range []string{"not attached", "lap.toml:", "endpoint[0].netns", "CAP_NET_ADMIN", cx.path()} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("endpoint ls as the user (%v) lacks %q:\n%s%s", err, want, out, se)
		}
	}
	// Beside it, what is allowed works: records from h1 arrive.
	e.waitLapSees(u, lap, "blue", "c1", "h1", "10.77.0.10")

	key := u.file(e, "k.key", mustRun(t, vxwireBin, "genkey")+"\n")
	for _, tc := range []struct {
		name  string
		extra string
		want  []string
	}{
		{"wireguard port", fmt.Sprintf("private_key_file = %q\nwg_port = 500\n", key),
			[]string{"host.wg_port: port 500 is privileged", "CAP_NET_BIND_SERVICE"}},
		{"vxlan port", "port = 789\n", []string{"host.port: port 789 is privileged"}},
		{"metrics port", "metrics = \"127.0.0.1:90\"\n", []string{"host.metrics: port 90 is privileged"}},
		{"/var/run socket", "api_socket = \"/var/run/" + e.prefix + "x/v.sock\"\n",
			[]string{"host.api_socket: rootless mode (uid", "cannot write /var/run/" + e.prefix + "x", "not writable"}},
		{"/var/lib state", "state_dir = \"/var/lib/" + e.prefix + "x\"\n",
			[]string{"host.state_dir: rootless mode (uid", "cannot write /var/lib/" + e.prefix + "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := u.file(e, "bad.toml", e.renderLap(u, lap, lapConf{peer: h1, net: lapBlue, extraHost: tc.extra}))
			_, se, err := u.run(lap.netns, vxwireBin, "config", "check", "-c", cfg)
			if err == nil {
				t.Fatalf("config check accepted %q", tc.extra)
			}
			for _, want := range append(tc.want, "bad.toml:") {
				if !strings.Contains(se, want) {
					t.Errorf("config check error lacks %q:\n%s", want, se)
				}
			}
			// The running daemon refuses the same as a reload and runs on.
			live := filepath.Join(u.home, "lap.toml")
			orig, err := os.ReadFile(live)
			if err != nil {
				t.Fatal(err)
			}
			bad, _ := os.ReadFile(cfg)
			u.file(e, "lap.toml", string(bad))
			defer u.file(e, "lap.toml", string(orig))
			before := strings.Count(dl.logText(), "reload refused")
			dl.signal(syscall.SIGHUP)
			e.eventually(reachTimeout, "reload refused", func() error {
				if n := strings.Count(dl.logText(), "reload refused"); n <= before {
					return fmt.Errorf("no refusal logged yet")
				}
				return nil
			})
			if log := dl.logText(); !strings.Contains(log, tc.want[0]) {
				t.Errorf("the refused reload does not say %q:\n%s", tc.want[0], tail(log, 5))
			}
			if !dl.running() {
				t.Fatal("the daemon stopped over a refused reload")
			}
			if _, err := e.userStatus(u, lap); err != nil {
				t.Fatalf("the daemon does not answer after a refused reload: %v", err)
			}
		})
	}
	// /var/run and the privileged port are still refused when the user
	// starts a daemon with them: it exits with the error, nothing left.
	cfg := u.file(e, "bad.toml", e.renderLap(u, lap, lapConf{peer: h1, net: lapBlue,
		extraHost: "api_socket = \"/var/run/" + e.prefix + "y.sock\"\ngossip_port = 946\n"}))
	out, se, err = u.run(lap.netns, vxwireBin, "up", "-c", cfg)
	if err == nil || !strings.Contains(se, "host.gossip_port: port 946 is privileged") || !strings.Contains(se, "cannot write /var/run") {
		t.Errorf("up with a privileged port and /var/run (%v):\n%s%s", err, out, se)
	}
	if _, err := os.Stat("/var/run/" + e.prefix + "y.sock"); err == nil {
		t.Errorf("a socket was made in /var/run")
	}
	if !dl.running() {
		t.Fatal("the laptop's daemon stopped")
	}
}

// mustRun runs name with args and returns its trimmed output.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runStdin("", name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
