package tests

// Helpers for the encrypted-network tests: host keys and the cluster
// secret, config files with WireGuard settings, the WireGuard view in
// `vxwire status` and in wg(8), UDP probes between containers, and a
// stock WireGuard host (Debian's wireguard-go with kernel VXLAN over it).
//
//   PFX-h1 (vxwire)                                PFX-h2 (vxwire, or stock)
//   wg_port 51820, UAPI PFX-wh1                    wg_port 51820, UAPI PFX-wh2
//   tunnel 100.82.0.1 --- WireGuard over UDP ---- tunnel 100.82.0.2
//      inner IPv4/UDP 100.82.0.1:4789 <-> 100.82.0.2:4789 carrying VXLAN
//
//   network sec: VNI 4000, 10.79.0.0/24, encrypted (container MTU 1390)

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// secNet is the encrypted network of these tests.
var secNet = netConf{name: "sec", vni: 4000, subnet: "10.79.0.0/24", gateway: "10.79.0.1"}

const (
	// wgPort is the WireGuard port of every host (the default wg_port).
	wgPort = 51820
	// encMTU is the container MTU of an encrypted network on a 1500-byte
	// underlay: 1500 - 50 (VXLAN) - 28 (inner IPv4/UDP) - 32 (WireGuard
	// header and tag) - 28 (outer IPv4/UDP).
	encMTU = 1390
	// wgInnerMTU is the largest inner packet the WireGuard tunnel carries
	// on that underlay: 1500 - 60.
	wgInnerMTU = 1440
)

// wgKey is a WireGuard key pair: the private key in a file of mode 0600,
// and the public key in base64.
type wgKey struct {
	file string
	pub  string
}

// runStdin runs name with args and stdin as its standard input, bounded by
// cmdTimeout, and returns its standard output without trailing space.
func runStdin(stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	var so, se bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &so, &se
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, so.String(), se.String())
	}
	return strings.TrimSpace(so.String()), nil
}

// privateFile writes content to name in the test's directory with mode
// 0600, as key and secret files must have, and returns its path.
func (e *env) privateFile(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// genKey makes a key pair with tool ("vxwire" runs `vxwire genkey` and
// `vxwire pubkey`, "wg" runs `wg genkey` and `wg pubkey`) and stores the
// private key as NAME.key.
func (e *env) genKey(tool, name string) wgKey {
	e.t.Helper()
	bin := vxwireBin
	if tool == "wg" {
		bin = "wg"
	}
	priv, err := runStdin("", bin, "genkey")
	if err != nil {
		e.t.Fatal(err)
	}
	pub, err := runStdin(priv+"\n", bin, "pubkey")
	if err != nil {
		e.t.Fatal(err)
	}
	return wgKey{file: e.privateFile(name+".key", priv+"\n"), pub: pub}
}

// clusterSecret writes a random 32-byte cluster secret (64 hex digits)
// the first time it is called and returns the file's path: every host of
// a test shares it.
func (e *env) clusterSecret() string {
	e.t.Helper()
	if e.secret == "" {
		e.secret = e.newSecret("cluster.secret")
	}
	return e.secret
}

// newSecret writes a fresh random secret to file name and returns its path.
func (e *env) newSecret(name string) string {
	e.t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		e.t.Fatal(err)
	}
	return e.privateFile(name, hex.EncodeToString(b[:])+"\n")
}

// encHost is a host with its WireGuard identity.
type encHost struct {
	*host
	key    wgKey
	wgName string // UAPI name: /var/run/wireguard/NAME.sock
	tunnel string // tunnel address
}

// derivedTunnel is the tunnel address vxwire derives for underlay address
// addr when the config leaves it out.
func derivedTunnel(addr string) string {
	return config.DeriveTunnelAddress(netip.MustParseAddr(addr)).String()
}

// withKey gives h a new vxwire key, a UAPI name unique to the test (the
// socket directory is global) and the derived tunnel address. Cleanup
// removes the UAPI socket, which a daemon that did not stop cleanly may
// leave behind; it runs after the daemons have stopped.
func (e *env) withKey(h *host) *encHost {
	e.t.Helper()
	eh := &encHost{host: h, key: e.genKey("vxwire", h.id), wgName: e.prefix + "w" + h.id, tunnel: derivedTunnel(h.addr)}
	sock := "/var/run/wireguard/" + eh.wgName + ".sock"
	e.t.Cleanup(func() { os.Remove(sock) })
	return eh
}

// encNetwork is one [[network]] table of an encConf.
type encNetwork struct {
	netConf
	encrypted bool
}

// encConf is the config file of a host with a WireGuard key.
type encConf struct {
	peers     []*encHost
	networks  []encNetwork
	endpoints []epConf
	secret    string // host.secret_file; "": the cluster secret with peers, else left out
	rotate    string // host.rotate_every; "": the default (12h)
	gossip    int    // host.gossip_port; 0: the default (7946)
	extra     string // appended to the file as is ([[publish]] tables)
}

// renderEnc returns h's config file text for c. Tunnel addresses are
// written only where they differ from the derived ones.
func (e *env) renderEnc(h *encHost, c encConf) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[host]\nname = %q\naddress = %q\nport = 4789\nstate_dir = %q\napi_socket = %q\n",
		h.id, h.addr, filepath.Join(e.dir, h.id+"-state"), e.socket(h.host))
	fmt.Fprintf(&b, "private_key_file = %q\nwg_port = %d\nwg_name = %q\n", h.key.file, wgPort, h.wgName)
	if h.tunnel != derivedTunnel(h.addr) {
		fmt.Fprintf(&b, "tunnel_address = %q\n", h.tunnel)
	}
	if c.secret == "" && len(c.peers) > 0 {
		c.secret = e.clusterSecret()
	}
	if c.secret != "" {
		fmt.Fprintf(&b, "secret_file = %q\n", c.secret)
	}
	if c.rotate != "" {
		fmt.Fprintf(&b, "rotate_every = %q\n", c.rotate)
	}
	if c.gossip != 0 {
		fmt.Fprintf(&b, "gossip_port = %d\n", c.gossip)
	}
	for _, p := range c.peers {
		fmt.Fprintf(&b, "\n[[peer]]\nname = %q\naddress = %q\npublic_key = %q\nwg_port = %d\n", p.id, p.addr, p.key.pub, wgPort)
		if p.tunnel != derivedTunnel(p.addr) {
			fmt.Fprintf(&b, "tunnel_address = %q\n", p.tunnel)
		}
	}
	for _, n := range c.networks {
		fmt.Fprintf(&b, "\n[[network]]\nname = %q\nvni = %d\nsubnet = %q\ngateway = %q\nencrypted = %t\n",
			n.name, n.vni, n.subnet, n.gateway, n.encrypted)
	}
	for _, ep := range c.endpoints {
		fmt.Fprintf(&b, "\n[[endpoint]]\nnetwork = %q\nname = %q\nnetns = %q\naddress = %q\n",
			ep.network, ep.name, ep.ns.path(), ep.addr)
		if len(ep.aliases) > 0 {
			fmt.Fprintf(&b, "aliases = [%s]\n", quoteList(ep.aliases))
		}
	}
	return b.String() + c.extra
}

// startEnc writes h's config and starts its daemon, waiting until it
// lists its endpoints.
func (e *env) startEnc(h *encHost, c encConf) *daemon {
	e.t.Helper()
	d := e.startDaemon(h.host, e.file(h.id+".toml", e.renderEnc(h, c)))
	var names []string
	for _, ep := range c.endpoints {
		names = append(names, ep.name)
	}
	d.waitReady(names...)
	return d
}

// wgPeer returns the WireGuard view of peer name in st.
func wgPeer(st api.Status, name string) (api.WireGuardPeer, error) {
	for _, p := range st.Peers {
		if p.Name == name {
			if p.WireGuard == nil {
				return api.WireGuardPeer{}, fmt.Errorf("status lists peer %s without wireguard state", name)
			}
			return *p.WireGuard, nil
		}
	}
	return api.WireGuardPeer{}, fmt.Errorf("status lists no peer %s", name)
}

// waitHandshake polls h's status until peer has a completed handshake, and
// returns the peer's WireGuard view.
func (e *env) waitHandshake(h *encHost, peer string) api.WireGuardPeer {
	e.t.Helper()
	var w api.WireGuardPeer
	e.eventually(reachTimeout, fmt.Sprintf("handshake of %s with %s", h.id, peer), func() error {
		st, err := e.status(h.host)
		if err != nil {
			return err
		}
		if w, err = wgPeer(st, peer); err != nil {
			return permanent(err)
		}
		if w.LastHandshake.IsZero() {
			return fmt.Errorf("no handshake yet: %+v", w)
		}
		return nil
	})
	return w
}

// statusMTU returns the MTU st reports for network name, or 0.
func statusMTU(st api.Status, name string) int {
	for _, n := range st.Networks {
		if n.Name == name {
			return n.MTU
		}
	}
	return 0
}

// linkMTU returns the MTU of ifname inside namespace n.
func (e *env) linkMTU(n *netns, ifname string) int {
	e.t.Helper()
	out := strings.TrimSpace(e.mustIn(n, "cat", "/sys/class/net/"+ifname+"/mtu"))
	mtu, err := strconv.Atoi(out)
	if err != nil {
		e.t.Fatalf("mtu of %s in %s: %q", ifname, n.name, out)
	}
	return mtu
}

// wgDumpPeer is one peer line of `wg show NAME dump`.
type wgDumpPeer struct {
	publicKey, endpoint, allowedIPs string
	handshake                       time.Time // zero: never
	rx, tx                          uint64
}

// wgDump runs `wg show NAME dump` inside namespace n and returns the
// interface's public key and listen port and its peers by public key.
func (e *env) wgDump(n *netns, name string) (pub string, port int, peers map[string]wgDumpPeer, err error) {
	out, err := e.in(n, "wg", "show", name, "dump")
	if err != nil {
		return "", 0, nil, err
	}
	peers = map[string]wgDumpPeer{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 {
			// private-key public-key listen-port fwmark
			if len(f) != 4 {
				return "", 0, nil, fmt.Errorf("wg show %s dump: interface line %q", name, line)
			}
			pub = f[1]
			port, _ = strconv.Atoi(f[2])
			continue
		}
		// public-key preshared-key endpoint allowed-ips latest-handshake
		// transfer-rx transfer-tx persistent-keepalive
		if len(f) != 8 {
			return "", 0, nil, fmt.Errorf("wg show %s dump: peer line %q", name, line)
		}
		p := wgDumpPeer{publicKey: f[0], endpoint: f[2], allowedIPs: f[3]}
		if s, _ := strconv.ParseInt(f[4], 10, 64); s > 0 {
			p.handshake = time.Unix(s, 0)
		}
		p.rx, _ = strconv.ParseUint(f[5], 10, 64)
		p.tx, _ = strconv.ParseUint(f[6], 10, 64)
		peers[p.publicKey] = p
	}
	return pub, port, peers, nil
}

// udpListener is a UDP socket bound inside a container, collecting what
// it receives.
type udpListener struct {
	pc *net.UDPConn
}

// listenUDP binds addr:port inside namespace n; cleanup closes it.
func (e *env) listenUDP(n *netns, addr string, port int) *udpListener {
	e.t.Helper()
	var pc *net.UDPConn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		pc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))))
		return err
	})
	if err != nil {
		e.t.Fatalf("udp socket on %s:%d in %s: %v", addr, port, n.name, err)
	}
	e.t.Cleanup(func() { pc.Close() })
	return &udpListener{pc: pc}
}

// next returns the next datagram received within wait, or an error.
func (l *udpListener) next(wait time.Duration) ([]byte, error) {
	_ = l.pc.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, 65536)
	n, _, err := l.pc.ReadFromUDP(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// deliverUDP sends payload from src in namespace from to dst:port until
// l (listening there) receives it, and fails the test after reachTimeout.
// Anything else l receives meanwhile is returned.
func (e *env) deliverUDP(from *netns, src string, l *udpListener, dst string, port int, payload []byte) (other [][]byte) {
	e.t.Helper()
	to := netip.AddrPortFrom(netip.MustParseAddr(dst), uint16(port))
	e.eventually(reachTimeout, fmt.Sprintf("datagram from %s to %v", src, to), func() error {
		e.sendUDP(from, src, to, payload)
		for {
			b, err := l.next(time.Second)
			if err != nil {
				return err
			}
			if bytes.Equal(b, payload) {
				return nil
			}
			other = append(other, b)
		}
	})
	return other
}

// marker returns a payload that is easy to find in a capture and unique
// to this test and purpose.
func (e *env) marker(what string) []byte {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		e.t.Fatal(err)
	}
	return []byte(fmt.Sprintf("VXWIRE-MARKER-%s-%s-%x", e.prefix, what, b))
}

// udpFrame returns an Ethernet frame from srcMAC to dstMAC carrying an
// IPv4/UDP datagram from src:sport to dst:dport with payload, and a zero
// UDP checksum (none, as RFC 768 allows over IPv4).
func udpFrame(dstMAC, srcMAC net.HardwareAddr, src, dst string, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 0, 14+28+len(payload))
	b = append(b, dstMAC...)
	b = append(b, srcMAC...)
	b = append(b, 0x08, 0x00)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(payload)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], netip.MustParseAddr(src).AsSlice())
	copy(ip[16:], netip.MustParseAddr(dst).AsSlice())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	b = append(b, ip...)
	udp := make([]byte, 8)
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	b = append(b, udp...)
	return append(b, payload...)
}

// decodeAs decodes the capture like fields, with WireGuard dissected on
// its port (-d udp.port==51820,wg).
func (c *capture) decodeAs(fields ...string) ([][]string, error) {
	args := []string{"-n", "-r", c.file, "-d", fmt.Sprintf("udp.port==%d,wg", wgPort),
		"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, stderr, err := run(cmdTimeout, "tshark", args...)
	if err != nil && (out == "" || !strings.Contains(stderr, "cut short")) {
		return nil, err
	}
	var rows [][]string
	for line := range strings.Lines(out) {
		if line = strings.TrimRight(line, "\n"); line != "" {
			row := strings.Split(line, "\t")
			rows = append(rows, append(row, make([]string, max(0, len(fields)-len(row)))...))
		}
	}
	return rows, nil
}

// holds reports whether the capture file holds the bytes b anywhere.
func (c *capture) holds(b []byte) (bool, error) {
	data, err := os.ReadFile(c.file)
	if err != nil {
		return false, err
	}
	return bytes.Contains(data, b), nil
}
