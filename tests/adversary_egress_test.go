package tests

// Attacks through the gateway's egress NAT, which dials from the host's own
// namespace and so would lend a container the host's identity.
//
//   PFX-c1 10.77.0.10 (blue)   PFX-c3 10.77.0.11 (blue)        PFX-r2 10.78.0.20 (red)
//              \                /                                    |
//      vxwire up (PFX-h1), networks blue + red          vxwire up (PFX-h2), blue + red
//      metrics on 198.18.0.1:9100; TCP on 127.0.0.1      gossip on 198.18.0.2:7946
//      and 169.254.169.254 (lo): the host's services
//   PFX-u1 198.18.0.1 ------------ PFX-sw: br0 ------------ PFX-u2 198.18.0.2
//                                       |
//                            PFX-out eth0 198.18.0.9 + .10: not a host; TCP and UDP
//                            echo servers (the Internet the containers may reach)

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/vxwire/vxwire/internal/api"
)

// refuseWithin is how fast a refused connection must fail: an answer,
// not a timeout. ECONNREFUSED already shows an answer came; the bound
// leaves room for a SYN retransmitted on a loaded machine (1 s, then 2 s)
// and stays under the dial's 5 s timeout.
const refuseWithin = 4 * time.Second

// egressTopo is the topology drawn above.
type egressTopo struct {
	h1, h2     *host
	out        *netns
	c1, c3, r2 *netns
	d1, d2     *daemon
}

// egressTopo builds the topology and starts both daemons; host1Extra is
// added to h1's [host] table.
func (e *env) egressTopo(host1Extra string) egressTopo {
	e.t.Helper()
	var t egressTopo
	sw := e.underlaySwitch()
	t.h1 = &host{netns: e.newNS("h1"), id: "h1", link: e.prefix + "u1", addr: "198.18.0.1"}
	t.h2 = &host{netns: e.newNS("h2"), id: "h2", link: e.prefix + "u2", addr: "198.18.0.2"}
	e.attachUnderlay(sw, t.h1.netns, t.h1.link, "1", t.h1.addr)
	e.attachUnderlay(sw, t.h2.netns, t.h2.link, "2", t.h2.addr)
	t.out = e.newNS("out")
	e.attachUnderlay(sw, t.out, "eth0", "o", "198.18.0.9")
	e.must("ip", "-n", t.out.name, "addr", "add", "198.18.0.10/24", "dev", "eth0")
	t.c1, t.c3, t.r2 = e.container("c1"), e.container("c3"), e.container("r2")
	t.d1 = e.startDaemon(t.h1, e.file("h1.toml", e.h1Config(t, host1Extra)))
	t.d2 = e.startDaemon(t.h2, e.writeConfig(t.h2, hostConf{
		peers: []*host{t.h1}, networks: []netConf{blue, red},
		endpoints: []epConf{{network: "red", name: "r2", ns: t.r2, addr: "10.78.0.20"}},
	}))
	t.d1.waitReady("c1", "c3")
	t.d2.waitReady("r2")
	return t
}

// h1Config is h1's config file, with extra added to its [host] table.
func (e *env) h1Config(t egressTopo, extra string) string {
	c := e.render(t.h1, hostConf{
		peers: []*host{t.h2}, networks: []netConf{blue, red}, metrics: "198.18.0.1:9100",
		endpoints: []epConf{
			{network: "blue", name: "c1", ns: t.c1, addr: "10.77.0.10"},
			{network: "blue", name: "c3", ns: t.c3, addr: "10.77.0.11"},
		},
	})
	return strings.Replace(c, "[host]\n", "[host]\n"+extra, 1)
}

// inNS runs f inside namespace n; sockets f creates stay in n.
func inNS(n *netns, f func() error) error {
	return ns.WithNetNSPath(n.path(), func(ns.NetNS) error { return f() })
}

// echoServers serves TCP and UDP echo on addr:port in namespace n until
// the test ends. TCP connections are held open until the client closes.
func (e *env) echoServers(n *netns, addr string, port int) {
	e.t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	hp := net.JoinHostPort(addr, fmt.Sprint(port))
	err := inNS(n, func() error {
		var err error
		if ln, err = net.Listen("tcp4", hp); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", hp)
		return err
	})
	if err != nil {
		e.t.Fatalf("echo servers on %s in %s: %v", hp, n.name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	go func() {
		defer wg.Done()
		b := make([]byte, 2048)
		for {
			k, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte("echo:"), b[:k]...), from)
		}
	}()
	e.t.Cleanup(func() {
		ln.Close()
		pc.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// dialTCP connects from namespace n to dst, bounded by 5 s, and returns
// the connection and how long the attempt took.
func dialTCP(n *netns, dst string) (net.Conn, time.Duration, error) {
	var c net.Conn
	start := time.Now()
	err := inNS(n, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", dst, 5*time.Second)
		return err
	})
	return c, time.Since(start), err
}

// mustRefuseTCP requires a connection from n to dst to fail with
// "connection refused" within refuseWithin.
func (e *env) mustRefuseTCP(n *netns, dst string) {
	e.t.Helper()
	c, took, err := dialTCP(n, dst)
	if err == nil {
		c.Close()
		e.t.Fatalf("%s connected to %s", n.name, dst)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) || took > refuseWithin {
		e.t.Fatalf("connect from %s to %s: %v after %v, want connection refused within %v", n.name, dst, err, took, refuseWithin)
	}
	e.t.Logf("tcp %s -> %s refused after %v", n.name, dst, took.Round(time.Microsecond))
}

// mustEchoTCP requires a connection from n to dst to carry an echo.
func (e *env) mustEchoTCP(n *netns, dst string) {
	e.t.Helper()
	c, _, err := dialTCP(n, dst)
	if err != nil {
		e.t.Fatalf("connect from %s to %s: %v", n.name, dst, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte("hello " + dst)
	got := make([]byte, len(msg))
	if _, err := c.Write(msg); err != nil {
		e.t.Fatalf("write from %s to %s: %v", n.name, dst, err)
	}
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		e.t.Fatalf("echo from %s to %s: %q, %v", n.name, dst, got, err)
	}
}

// udpExchange sends payload from n to dst on a connected socket and waits
// up to wait for the answer. An ICMP port unreachable comes back as
// ECONNREFUSED. It returns the answer and how long it took.
func udpExchange(n *netns, dst string, payload []byte, wait time.Duration) ([]byte, time.Duration, error) {
	var c net.Conn
	if err := inNS(n, func() error {
		var err error
		c, err = net.Dial("udp4", dst)
		return err
	}); err != nil {
		return nil, 0, err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(wait))
	if _, err := c.Write(payload); err != nil {
		return nil, time.Since(start), err
	}
	b := make([]byte, 2048)
	k, err := c.Read(b)
	return b[:k], time.Since(start), err
}

// mustRefuseUDP requires a datagram from n to dst to be answered with an
// ICMP unreachable (ECONNREFUSED) within refuseWithin.
func (e *env) mustRefuseUDP(n *netns, dst string, payload []byte) {
	e.t.Helper()
	got, took, err := udpExchange(n, dst, payload, 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) || took > refuseWithin {
		e.t.Fatalf("udp from %s to %s: answer %q, %v after %v; want ICMP unreachable (connection refused) within %v",
			n.name, dst, got, err, took, refuseWithin)
	}
	e.t.Logf("udp %s -> %s refused after %v", n.name, dst, took.Round(time.Microsecond))
}

// gatewayDrops returns the drops of network's gateway for reason in st.
func gatewayDrops(st api.Status, network, reason string) uint64 {
	for _, n := range st.Networks {
		if n.Name == network && n.GatewayStats != nil {
			return n.GatewayStats.Counters.Drops[reason]
		}
	}
	return 0
}

// waitGatewayDrops waits until h counts at least want drops of reason at
// network's gateway.
func (e *env) waitGatewayDrops(h *host, network, reason string, want uint64) {
	e.t.Helper()
	e.eventually(readyTimeout, fmt.Sprintf("%s drops of %s's gateway on %s", reason, network, h.id), func() error {
		st, err := e.status(h)
		if err != nil {
			return err
		}
		if got := gatewayDrops(st, network, reason); got < want {
			return fmt.Errorf("%d, want at least %d", got, want)
		}
		return nil
	})
}

// arpFor returns a broadcast ARP request from src asking who has target,
// telling sender.
func arpFor(src net.HardwareAddr, sender, target string) []byte {
	b := make([]byte, 0, 60)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = append(b, src...)
	b = append(b, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	b = append(b, src...)
	b = append(b, netip.MustParseAddr(sender).AsSlice()...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, netip.MustParseAddr(target).AsSlice()...)
	return append(b, make([]byte, 60-len(b))...)
}

// neighbour returns namespace n's neighbour entry for ip, "" if none.
func (e *env) neighbour(n *netns, ip string) string {
	e.t.Helper()
	return strings.TrimSpace(e.mustIn(n, "ip", "neigh", "show", ip))
}

// TestAdversaryEgressVXLANInjection: a container on blue sends, through
// its gateway, a VXLAN datagram for red's VNI holding an ARP request to
// host 2's VXLAN port. Before this fix the NAT sent it from host 1's
// underlay address, host 2 took it as its peer's, and the red container
// on host 2 learnt the forged sender (the class of CVE-2023-28840/41/42).
// Now the container gets an ICMP unreachable at once (to the VXLAN and the
// WireGuard port of any address) and red sees nothing;
// the same datagram from host 1's own address (the control) does reach
// red, and the same UDP socket reaches an outside echo server.
func TestAdversaryEgressVXLANInjection(t *testing.T) {
	e := newEnv(t)
	tp := e.egressTopo("")
	e.echoServers(tp.out, "198.18.0.9", 5555)
	src := net.HardwareAddr{0x02, 0, 0, 0, 0x66, 1}
	forged := func(sender string) []byte {
		return vxlanDatagram(0x08, uint32(red.vni), arpFor(src, sender, "10.78.0.20"))
	}

	// The control: from h1's address itself, red on h2 learns the sender.
	e.eventually(reachTimeout, "red container learns the sender of a peer's VXLAN ARP", func() error {
		e.sendUDP(tp.h1.netns, tp.h1.addr, netip.MustParseAddrPort("198.18.0.2:4789"), forged("10.78.0.98"))
		if e.neighbour(tp.r2, "10.78.0.98") == "" {
			return errors.New("no neighbour entry for 10.78.0.98 in r2")
		}
		return nil
	})

	// The probe: egress works for an allowed outside server.
	got, _, err := udpExchange(tp.c1, "198.18.0.9:5555", []byte("probe"), 5*time.Second)
	if err != nil || string(got) != "echo:probe" {
		t.Fatalf("udp from c1 to the outside echo server: %q, %v", got, err)
	}

	// The attack, to host 2 and (UDP 4789 is refused to any address) to
	// the outside namespace.
	// Whether it landed is checked first, what the container was told
	// after.
	before := gatewayDrops(e.mustStatus(tp.h1), "blue", api.DropEgressDenied)
	type answer struct {
		dst  string
		got  []byte
		took time.Duration
		err  error
	}
	var answers []answer
	// The WireGuard port, where encrypted networks' traffic arrives, is
	// refused the same way.
	for _, dst := range []string{"198.18.0.2:4789", "198.18.0.9:4789", "198.18.0.2:51820", "198.18.0.9:51820"} {
		got, took, err := udpExchange(tp.c1, dst, forged("10.78.0.99"), 5*time.Second)
		answers = append(answers, answer{dst, got, took, err})
	}

	// A later control datagram reaches red, so anything the attack had
	// got through would be there by now.
	e.eventually(reachTimeout, "red container learns the second control sender", func() error {
		e.sendUDP(tp.h1.netns, tp.h1.addr, netip.MustParseAddrPort("198.18.0.2:4789"), forged("10.78.0.97"))
		if e.neighbour(tp.r2, "10.78.0.97") == "" {
			return errors.New("no neighbour entry for 10.78.0.97 in r2")
		}
		return nil
	})
	if n := e.neighbour(tp.r2, "10.78.0.99"); n != "" {
		t.Fatalf("the red container on h2 learnt the injected sender: %s", n)
	}
	for _, a := range answers {
		if !errors.Is(a.err, syscall.ECONNREFUSED) || a.took > refuseWithin {
			t.Fatalf("udp from c1 to %s: answer %q, %v after %v; want ICMP unreachable (connection refused) within %v",
				a.dst, a.got, a.err, a.took, refuseWithin)
		}
	}
	e.waitGatewayDrops(tp.h1, "blue", api.DropEgressDenied, before+uint64(len(answers)))
}

// TestAdversaryEgressReachesHosts: a container connects through its
// gateway to host 2's gossip and raft ports and to host 1's own address
// (its metrics listener), and sends UDP to both gossip ports. Before this
// fix both connected, from host 1's address. Now each is refused (RST or
// ICMP port unreachable) within a second and counted, while the hosts
// themselves reach those listeners and the container reaches an outside
// server; so is an address host 1 gains while running.
func TestAdversaryEgressReachesHosts(t *testing.T) {
	e := newEnv(t)
	tp := e.egressTopo("")
	e.echoServers(tp.out, "198.18.0.9", 8080)

	// The listeners exist: h1 reaches h2's gossip port and its own metrics.
	for _, dst := range []string{"198.18.0.2:7946", "198.18.0.1:9100"} {
		e.eventually(readyTimeout, "h1 connects to "+dst, func() error {
			c, _, err := dialTCP(tp.h1.netns, dst)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	e.mustEchoTCP(tp.c1, "198.18.0.9:8080")

	before := gatewayDrops(e.mustStatus(tp.h1), "blue", api.DropEgressDenied)
	for _, dst := range []string{"198.18.0.2:7946", "198.18.0.1:9100", "198.18.0.1:7946", "198.18.0.2:7948", "198.18.0.2:22"} {
		e.mustRefuseTCP(tp.c1, dst)
	}
	// Gossip over UDP (memberlist's probes and broadcasts), to both hosts.
	for _, dst := range []string{"198.18.0.2:7946", "198.18.0.1:7946"} {
		e.mustRefuseUDP(tp.c1, dst, []byte("\x00forged gossip"))
	}
	e.waitGatewayDrops(tp.h1, "blue", api.DropEgressDenied, before+7)
	if g := gatewayOf(e.mustStatus(tp.h1), "blue"); g.EgressTCPTotal == 0 {
		t.Fatalf("blue's gateway stats %+v, want the probe's flow counted", g)
	}

	// An address h1 gains while running is refused too, with no reload,
	// within a second: the daemon hears of it from the kernel. Before
	// that it read the addresses every 5 s, and a container could reach
	// a service on a new address for up to that long.
	added := time.Now()
	e.must("ip", "-n", tp.h1.name, "addr", "add", "198.18.0.50/24", "dev", tp.h1.link)
	e.echoServers(tp.h1.netns, "198.18.0.50", 8080)
	defer func() {
		t.Logf("h1's new address refused %v after it was added", time.Since(added).Round(time.Millisecond))
	}()
	e.eventually(time.Second, "h1's new address refused", func() error {
		c, _, err := dialTCP(tp.c1, "198.18.0.50:8080")
		if err == nil {
			c.Close()
			return errors.New("c1 still connects to 198.18.0.50")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return permanent(err)
		}
		return nil
	})
}

// TestAdversaryEgressHostServices: a container reaches for the cloud
// metadata address and the host's loopback. 169.254.169.254 (here on
// h1's lo, as a metadata service would answer) is refused at once over
// TCP and UDP; a hand-made SYN to 127.0.0.1, which a container's kernel
// would never route to its gateway, is dropped and counted, and the
// host's loopback listener sees nothing. An operator's egress_deny entry
// is refused beside a neighbouring address that works.
// Before this fix metadata was reached from the host's address; loopback
// was already dropped, silently and uncounted; egress_deny did not exist.
func TestAdversaryEgressHostServices(t *testing.T) {
	e := newEnv(t)
	tp := e.egressTopo(`egress_deny = ["198.18.0.10/32", "tcp:198.18.0.9/32:8081"]` + "\n")
	e.echoServers(tp.out, "198.18.0.9", 8080)
	e.echoServers(tp.out, "198.18.0.9", 8081)
	e.echoServers(tp.out, "198.18.0.10", 8080)
	e.must("ip", "-n", tp.h1.name, "addr", "add", "169.254.169.254/32", "dev", "lo")
	e.echoServers(tp.h1.netns, "169.254.169.254", 80)
	e.echoServers(tp.h1.netns, "127.0.0.1", 8080)
	e.mustEchoTCP(tp.h1.netns, "169.254.169.254:80")

	e.mustRefuseTCP(tp.c1, "169.254.169.254:80")
	e.mustRefuseUDP(tp.c1, "169.254.169.254:80", []byte("GET /latest/meta-data/"))

	// The operator's list: a whole address, and one TCP port of another.
	e.mustEchoTCP(tp.c1, "198.18.0.9:8080")
	e.mustRefuseTCP(tp.c1, "198.18.0.9:8081")
	e.mustRefuseTCP(tp.c1, "198.18.0.10:8080")
	if got, _, err := udpExchange(tp.c1, "198.18.0.9:8081", []byte("udp"), 5*time.Second); err != nil || string(got) != "echo:udp" {
		t.Fatalf("udp to 198.18.0.9:8081 (only tcp is listed): %q, %v", got, err)
	}

	// Loopback, by a raw frame: c1 learns the gateway's MAC, then sends a
	// datagram to 127.0.0.1:8080 through it.
	e.mustPing(tp.c1, "10.77.0.1")
	st := e.mustStatus(tp.h1)
	before, flows := gatewayDrops(st, "blue", api.DropEgressDenied), gatewayOf(st, "blue").EgressUDPTotal
	gwMAC, err := net.ParseMAC(e.linkAddr(tp.c1, "10.77.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	ownMAC, err := net.ParseMAC(e.linkMAC(tp.c1, "eth0"))
	if err != nil {
		t.Fatal(err)
	}
	e.sendFrame(tp.c1, "eth0", udpFrame(gwMAC, ownMAC, "10.77.0.10", "127.0.0.1", 40000, 8080, []byte("loopback?")))
	e.waitGatewayDrops(tp.h1, "blue", api.DropEgressDenied, before+1)
	if got := gatewayOf(e.mustStatus(tp.h1), "blue").EgressUDPTotal; got != flows {
		t.Fatalf("egress UDP flows went from %d to %d: the loopback datagram was relayed", flows, got)
	}
}

// gatewayOf returns the gateway status of network in st (zero if none).
func gatewayOf(st api.Status, network string) api.GatewayStatus {
	for _, n := range st.Networks {
		if n.Name == network && n.GatewayStats != nil {
			return *n.GatewayStats
		}
	}
	return api.GatewayStatus{}
}

// linkAddr returns the MAC namespace n's neighbour table holds for ip.
func (e *env) linkAddr(n *netns, ip string) string {
	e.t.Helper()
	f := strings.Fields(e.neighbour(n, ip))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	e.t.Fatalf("no link address for %s in %s: %q", ip, n.name, f)
	return ""
}

// sendFrame writes frame, Ethernet header included, to ifname in
// namespace n through a raw packet socket, as a hostile container can.
func (e *env) sendFrame(n *netns, ifname string, frame []byte) {
	e.t.Helper()
	err := inNS(n, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6, Addr: [8]byte(append(frame[0:6:6], 0, 0))})
	})
	if err != nil {
		e.t.Fatalf("raw frame on %s in %s: %v", ifname, n.name, err)
	}
}

// TestAdversaryEgressFlowCap: one container opens more egress flows than
// its cap of 256. Before this fix only the network's cap (4096) held, so
// one container could take every flow of its network. Now its 257th
// connection is refused at once while another container of the same
// network still connects.
func TestAdversaryEgressFlowCap(t *testing.T) {
	e := newEnv(t)
	tp := e.egressTopo("")
	e.echoServers(tp.out, "198.18.0.9", 8080)
	const capPerContainer = 256
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := range capPerContainer {
		c, _, err := dialTCP(tp.c1, "198.18.0.9:8080")
		if err != nil {
			t.Fatalf("connection %d of c1: %v", i+1, err)
		}
		held = append(held, c)
	}
	e.mustRefuseTCP(tp.c1, "198.18.0.9:8080")
	e.mustEchoTCP(tp.c3, "198.18.0.9:8080")
	e.waitGatewayDrops(tp.h1, "blue", api.DropSourceFlowLimit, 1)

	// Closing one frees a slot.
	held[0].Close()
	e.eventually(readyTimeout, "c1 connects again after closing one", func() error {
		c, _, err := dialTCP(tp.c1, "198.18.0.9:8080")
		if err == nil {
			held = append(held, c)
		}
		return err
	})
}

// TestEgressDenyReload: SIGHUP applies a changed host.egress_deny without
// a restart, ending open connections it now refuses, and a list with a
// mistake is refused with its FILE:LINE and leaves the running list in
// force.
func TestEgressDenyReload(t *testing.T) {
	e := newEnv(t)
	tp := e.egressTopo(`egress_deny = ["198.18.0.10/32"]` + "\n")
	e.echoServers(tp.out, "198.18.0.10", 8080)
	e.mustRefuseTCP(tp.c1, "198.18.0.10:8080")

	// rewrite replaces h1's egress_deny and signals the daemon.
	var cfg string
	rewrite := func(list string) {
		t.Helper()
		cfg = e.file("h1.toml", e.h1Config(tp, "egress_deny = "+list+"\n"))
		tp.d1.signal(syscall.SIGHUP)
	}

	rewrite(`["198.18.0.11/32"]`)
	e.eventually(readyTimeout, "198.18.0.10 allowed after the reload", func() error {
		c, _, err := dialTCP(tp.c1, "198.18.0.10:8080")
		if err == nil {
			c.Close()
		}
		return err
	})

	logged := len(tp.d1.logText())
	rewrite(`["198.18.0.10/32", "198.18.0.12/33"]`)
	e.eventually(readyTimeout, "daemon h1 logs the broken list", func() error {
		want := fmt.Sprintf("%s:2: host.egress_deny[1]", cfg)
		if msg := tp.d1.logText()[logged:]; !strings.Contains(msg, want) {
			return fmt.Errorf("log since the reload has no %q:\n%s", want, msg)
		}
		return nil
	})
	e.mustEchoTCP(tp.c1, "198.18.0.10:8080") // the old list is still in force

	// A connection open when the destination becomes refused is ended.
	open, _, err := dialTCP(tp.c1, "198.18.0.10:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	rewrite(`["198.18.0.10/32"]`)
	e.eventually(readyTimeout, "198.18.0.10 refused again after the reload", func() error {
		c, _, err := dialTCP(tp.c1, "198.18.0.10:8080")
		if err == nil {
			c.Close()
			return errors.New("still connects")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return permanent(err)
		}
		return nil
	})
	_ = open.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection to 198.18.0.10 still open after it was refused: %v", err)
	}
}
