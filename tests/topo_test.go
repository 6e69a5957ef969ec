package tests

// Topology helpers: hosts joined by an underlay veth, containers, a kernel
// VXLAN host (the interop peer), and vxwire config files.
//
//   PFX-h1                                   PFX-h2
//   PFX-u1 198.18.0.1/24 ====== veth ====== PFX-u2 198.18.0.2/24   (MTU 1500)
//
//   PFX-cN: empty namespaces (only lo) until the daemon creates their eth0.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// host is a namespace standing for one machine, with one underlay link.
type host struct {
	*netns
	id   string // "h1": host name in configs and file names
	link string // underlay interface
	addr string // underlay IPv4 address, in 198.18.0.0/15
	// gossip is the control-plane address (host.gossip_address, and the
	// peers' gossip_address); "": addr.
	gossip string
	// kernel marks a host that runs kernel VXLAN: its peers' configs say
	// kernel = true, so it gets no vote on address blocks.
	kernel bool
}

// twoHosts creates hosts h1 and h2 joined by a veth pair with addresses
// 198.18.0.1/24 and 198.18.0.2/24 and MTU 1500.
func (e *env) twoHosts() (h1, h2 *host) {
	e.t.Helper()
	h1 = &host{netns: e.newNS("h1"), id: "h1", link: e.prefix + "u1", addr: "198.18.0.1"}
	h2 = &host{netns: e.newNS("h2"), id: "h2", link: e.prefix + "u2", addr: "198.18.0.2"}
	e.must("ip", "link", "add", h1.link, "netns", h1.name, "mtu", "1500", "type", "veth",
		"peer", "name", h2.link, "netns", h2.name, "mtu", "1500")
	for _, h := range []*host{h1, h2} {
		e.must("ip", "-n", h.name, "addr", "add", h.addr+"/24", "dev", h.link)
		e.must("ip", "-n", h.name, "link", "set", h.link, "up")
	}
	return h1, h2
}

// container creates an empty container namespace. Cleanup removes
// /etc/netns/NAME, where a daemon writes the container's resolv.conf, in
// case a daemon that did not stop cleanly left it there; it runs after the
// daemons have stopped, so it does not hide their own clean-up.
func (e *env) container(short string) *netns {
	e.t.Helper()
	dir := filepath.Join("/etc/netns", e.prefix+short)
	e.t.Cleanup(func() { os.RemoveAll(dir) })
	return e.newNS(short)
}

// kernelPort is a container attached to a kernel VXLAN host by a veth.
type kernelPort struct {
	ns   *netns
	addr string // CIDR
}

// kernelVXLAN turns h into a host that runs Linux kernel VXLAN instead of
// vxwire: vx0 (VNI vni, UDP 4789, learning) and a veth to each container
// in bridge br0, MTU 1450, broadcast replicated to each remote address.
// Transmit checksum offload is turned off on the underlay veth, or the
// kernel would send inner TCP/UDP checksums unfilled, which no real wire
// carries.
func (e *env) kernelVXLAN(h *host, vni int, remotes []string, ports ...kernelPort) {
	e.t.Helper()
	ipn := func(args ...string) { e.t.Helper(); e.must("ip", append([]string{"-n", h.name}, args...)...) }
	ipn("link", "add", "br0", "type", "bridge")
	ipn("link", "add", "vx0", "type", "vxlan", "id", fmt.Sprint(vni), "dstport", "4789",
		"local", h.addr, "dev", h.link)
	for _, r := range remotes {
		e.mustIn(h.netns, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", r)
	}
	ipn("link", "set", "vx0", "mtu", "1450", "master", "br0", "up")
	for i, p := range ports {
		hostEnd := fmt.Sprintf("%sk%d", e.prefix, i)
		e.must("ip", "link", "add", hostEnd, "netns", h.name, "mtu", "1450", "type", "veth",
			"peer", "name", "eth0", "netns", p.ns.name, "mtu", "1450")
		ipn("link", "set", hostEnd, "master", "br0", "up")
		e.must("ip", "-n", p.ns.name, "addr", "add", p.addr, "dev", "eth0")
		e.must("ip", "-n", p.ns.name, "link", "set", "eth0", "up")
	}
	ipn("link", "set", "br0", "up")
	e.mustIn(h.netns, "ethtool", "-K", h.link, "tx", "off")
}

// netConf is one [[network]] table.
type netConf struct {
	name     string
	vni      int
	subnet   string
	gateway  string
	noEgress bool // egress = false
}

// epConf is one [[endpoint]] table.
type epConf struct {
	network string
	name    string
	ns      *netns
	addr    string   // "": left out, the daemon allocates one
	aliases []string // DNS aliases
	ifname  string   // "": left out (eth0)
}

// hostConf is one host's config file.
type hostConf struct {
	peers       []*host
	networks    []netConf
	endpoints   []epConf
	peerTimeout string   // host.peer_timeout ("3s"); "": the default
	dnsUpstream []string // host.dns_upstream ("IP:PORT"); nil: the default
	apiGroup    string   // host.api_group; "": left out (the socket is root's)
	metrics     string   // host.metrics ("IP:PORT"); "": left out (no metrics)
	secret      string   // host.secret_file; "": the cluster secret when there are peers
	dockerPlug  string   // host.docker_plugin; "": left out (no Docker plugin)
	procs       int      // host.procs; 0: left out (automatic)
}

// blue is the network most tests use.
var blue = netConf{name: "blue", vni: 256, subnet: "10.77.0.0/24", gateway: "10.77.0.1"}

// socket is the API socket of h's daemon, in the test's directory.
func (e *env) socket(h *host) string { return filepath.Join(e.dir, h.id+".sock") }

// render returns h's config file text for c.
func (e *env) render(h *host, c hostConf) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[host]\nname = %q\naddress = %q\nport = 4789\nstate_dir = %q\napi_socket = %q\n",
		h.id, h.addr, filepath.Join(e.dir, h.id+"-state"), e.socket(h))
	if h.gossip != "" {
		fmt.Fprintf(&b, "gossip_address = %q\n", h.gossip)
	}
	if c.procs != 0 {
		fmt.Fprintf(&b, "procs = %d\n", c.procs)
	}
	if c.secret == "" && len(c.peers) > 0 {
		c.secret = e.clusterSecret()
	}
	if c.secret != "" {
		fmt.Fprintf(&b, "secret_file = %q\n", c.secret)
	}
	if c.peerTimeout != "" {
		fmt.Fprintf(&b, "peer_timeout = %q\n", c.peerTimeout)
	}
	if c.dnsUpstream != nil {
		fmt.Fprintf(&b, "dns_upstream = [%s]\n", quoteList(c.dnsUpstream))
	}
	if c.apiGroup != "" {
		fmt.Fprintf(&b, "api_group = %q\n", c.apiGroup)
	}
	if c.metrics != "" {
		fmt.Fprintf(&b, "metrics = %q\n", c.metrics)
	}
	if c.dockerPlug != "" {
		fmt.Fprintf(&b, "docker_plugin = %q\n", c.dockerPlug)
	}
	for _, p := range c.peers {
		fmt.Fprintf(&b, "\n[[peer]]\nname = %q\naddress = %q\n", p.id, p.addr)
		if p.gossip != "" {
			fmt.Fprintf(&b, "gossip_address = %q\n", p.gossip)
		}
		if p.kernel {
			b.WriteString("kernel = true\n")
		}
	}
	for _, n := range c.networks {
		fmt.Fprintf(&b, "\n[[network]]\nname = %q\nvni = %d\nsubnet = %q\ngateway = %q\n",
			n.name, n.vni, n.subnet, n.gateway)
		if n.noEgress {
			b.WriteString("egress = false\n")
		}
	}
	for _, ep := range c.endpoints {
		fmt.Fprintf(&b, "\n[[endpoint]]\nnetwork = %q\nname = %q\nnetns = %q\n",
			ep.network, ep.name, ep.ns.path())
		if ep.addr != "" {
			fmt.Fprintf(&b, "address = %q\n", ep.addr)
		}
		if len(ep.aliases) > 0 {
			fmt.Fprintf(&b, "aliases = [%s]\n", quoteList(ep.aliases))
		}
		if ep.ifname != "" {
			fmt.Fprintf(&b, "ifname = %q\n", ep.ifname)
		}
	}
	return b.String()
}

// quoteList formats ss as the inside of a TOML array of strings.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// writeConfig writes h's config file and returns its path. Writing it again
// replaces it, as an operator does before SIGHUP.
func (e *env) writeConfig(h *host, c hostConf) string {
	e.t.Helper()
	return e.file(h.id+".toml", e.render(h, c))
}

// bluePair is two hosts with one container each on network blue.
type bluePair struct {
	h1, h2 *host
	c1, c2 *netns
	d1, d2 *daemon
}

// bluePair starts two hosts with one container each on network blue, c1
// (10.77.0.10) on h1 and c2 (10.77.0.20) on h2, and waits until both
// daemons list their container.
func (e *env) bluePair() bluePair {
	e.t.Helper()
	var p bluePair
	p.h1, p.h2 = e.twoHosts()
	p.c1, p.c2 = e.container("c1"), e.container("c2")
	p.d1 = e.startDaemon(p.h1, e.writeConfig(p.h1, hostConf{
		peers: []*host{p.h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: p.c1, addr: "10.77.0.10"}},
	}))
	p.d2 = e.startDaemon(p.h2, e.writeConfig(p.h2, hostConf{
		peers: []*host{p.h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: p.c2, addr: "10.77.0.20"}},
	}))
	p.d1.waitReady("c1")
	p.d2.waitReady("c2")
	return p
}
