package tests

//  PFX-b1 10.77.0.10  PFX-r1 10.78.0.10           PFX-b2 10.77.0.20  PFX-r2 10.78.0.20
//   (blue)  ^tshark    (red)  ^tshark               (blue)            (red)   ^tshark
//        \              /                                \              /
//       vxwire up (PFX-h1)                              vxwire up (PFX-h2)
//       PFX-u1 198.18.0.1/24 ========== veth ========== PFX-u2 198.18.0.2/24
//         ^ tshark -f 'udp port 4789'
//
//  blue: VNI 256, 10.77.0.0/24     red: VNI 257, 10.78.0.0/24
//  Every container also routes the other network's /24 straight out of
//  eth0, so any frame that leaked from one network into the other would be
//  answered: an ARP request leaked from blue gets a reply from red.

import (
	"strings"
	"testing"
)

var red = netConf{name: "red", vni: 257, subnet: "10.78.0.0/24", gateway: "10.78.0.1"}

// TestNetworkIsolation checks that two networks on the same hosts cannot
// reach each other, that no frame of one is delivered into the other, and
// that each network's frames carry its own VNI on the wire.
func TestNetworkIsolation(t *testing.T) {
	e := newEnv(t, "tshark")
	h1, h2 := e.twoHosts()
	b1, r1, b2, r2 := e.container("b1"), e.container("r1"), e.container("b2"), e.container("r2")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers: []*host{h2}, networks: []netConf{blue, red},
		endpoints: []epConf{
			{network: "blue", name: "b1", ns: b1, addr: "10.77.0.10"},
			{network: "red", name: "r1", ns: r1, addr: "10.78.0.10"},
		},
	}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{
		peers: []*host{h1}, networks: []netConf{blue, red},
		endpoints: []epConf{
			{network: "blue", name: "b2", ns: b2, addr: "10.77.0.20"},
			{network: "red", name: "r2", ns: r2, addr: "10.78.0.20"},
		},
	}))
	d1.waitReady("b1", "r1")
	d2.waitReady("b2", "r2")
	for _, c := range []*netns{b1, b2} {
		e.must("ip", "-n", c.name, "route", "add", red.subnet, "dev", "eth0")
	}
	for _, c := range []*netns{r1, r2} {
		e.must("ip", "-n", c.name, "route", "add", blue.subnet, "dev", "eth0")
	}
	blueMACs, redMACs := map[string]bool{}, map[string]bool{}
	for _, c := range []*netns{b1, b2, r1, r2} {
		mac := strings.TrimSpace(e.mustIn(c, "cat", "/sys/class/net/eth0/address"))
		if c == b1 || c == b2 {
			blueMACs[mac] = true
		} else {
			redMACs[mac] = true
		}
	}

	e.mustPing(b1, "10.77.0.20")
	e.mustPing(r1, "10.78.0.20")
	e.mustPing(b2, "10.77.0.10")
	e.mustPing(r2, "10.78.0.10")

	fields := []string{"eth.src", "arp.src.proto_ipv4", "ip.src", "icmp.type"}
	ul := e.startCapture(h1.netns, h1.link, "udp port 4789")
	caps := []*capture{e.startCapture(r1, "eth0", ""), e.startCapture(r2, "eth0", "")}

	e.mustNotPing(b1, "10.78.0.10") // blue -> red, same host
	e.mustNotPing(b1, "10.78.0.20") // blue -> red, across hosts
	e.mustNotPing(b2, "10.78.0.10") // blue -> red, across hosts, other way
	e.mustNotPing(r2, "10.77.0.10") // red -> blue, across hosts

	// Markers: the capture files are complete once they hold these.
	e.mustPing(r1, "10.78.0.20")
	e.mustPing(b1, "10.77.0.20")
	for _, c := range caps {
		rows := c.captureUntil("the red marker ping", pinged("10.78.0.10", "10.78.0.20", 2, 3), fields...)
		for _, r := range rows {
			if blueMACs[r[0]] || strings.HasPrefix(r[1], "10.77.") || strings.HasPrefix(last(r[2]), "10.77.") {
				t.Errorf("frame of network blue delivered to a red container (%s): %q", c.file, r)
			}
		}
	}

	wire := append([]string{"vxlan.vni"}, fields...)
	rows := ul.captureUntil("both marker pings", func(rows [][]string) bool {
		return pinged("10.78.0.10", "10.78.0.20", 3, 4)(rows) && pinged("10.77.0.10", "10.77.0.20", 3, 4)(rows)
	}, wire...)
	vnis := map[string]int{}
	for _, r := range rows {
		src := last(r[1])
		isBlue := blueMACs[src] || strings.HasPrefix(r[2], "10.77.") || strings.HasPrefix(last(r[3]), "10.77.")
		isRed := redMACs[src] || strings.HasPrefix(r[2], "10.78.") || strings.HasPrefix(last(r[3]), "10.78.")
		switch {
		case isBlue && r[0] != "256", isRed && r[0] != "257":
			t.Errorf("frame on the underlay with the other network's VNI: %q", r)
		}
		vnis[r[0]]++
	}
	t.Logf("underlay frames by VNI: %v", vnis)
}

// icmpSeen returns the set of "SRC/TYPE" of the ICMP messages in rows,
// whose columns src and typ hold ip.src and icmp.type; SRC is the inner
// source address.
func icmpSeen(rows [][]string, src, typ int) map[string]bool {
	seen := map[string]bool{}
	for _, r := range rows {
		if len(r) > max(src, typ) && r[typ] != "" {
			seen[last(r[src])+"/"+r[typ]] = true
		}
	}
	return seen
}

// pinged returns a predicate over capture rows (columns as for icmpSeen)
// that holds once an echo request from a and an echo reply from b were
// captured.
func pinged(a, b string, src, typ int) func(rows [][]string) bool {
	return func(rows [][]string) bool {
		seen := icmpSeen(rows, src, typ)
		return seen[a+"/8"] && seen[b+"/0"]
	}
}
