package tests

// Control and data planes on separate links (host.gossip_address):
//
//   PFX-h1                                      PFX-h2
//   PFX-u1 198.18.0.1/24 ==== data veth ===== PFX-u2 198.18.0.2/24   VXLAN
//   PFX-k1 198.19.0.1/24 === control veth ==== PFX-k2 198.19.0.2/24  gossip, raft
//     c1 (10.77.0.10)                             c2 (10.77.0.20)

import (
	"slices"
	"strings"
	"testing"
)

// controlLink joins h1 and h2 by a second veth pair, 198.19.0.1/24 and
// 198.19.0.2/24, and makes those their gossip addresses.
func (e *env) controlLink(h1, h2 *host) (l1, l2 string) {
	e.t.Helper()
	l1, l2 = e.prefix+"k1", e.prefix+"k2"
	e.must("ip", "link", "add", l1, "netns", h1.name, "type", "veth", "peer", "name", l2, "netns", h2.name)
	for _, x := range []struct {
		h    *host
		link string
		addr string
	}{{h1, l1, "198.19.0.1"}, {h2, l2, "198.19.0.2"}} {
		e.must("ip", "-n", x.h.name, "addr", "add", x.addr+"/24", "dev", x.link)
		e.must("ip", "-n", x.h.name, "link", "set", x.link, "up")
		x.h.gossip = x.addr
	}
	return l1, l2
}

// controlPorts reports whether a captured frame's ports are gossip's
// (7946) or the address-block log's (7948).
func controlPorts(row []string) bool {
	for _, f := range row[:4] {
		for _, p := range strings.Split(f, ",") {
			if p == "7946" || p == "7948" {
				return true
			}
		}
	}
	return false
}

func TestGossipAddressSeparateLink(t *testing.T) {
	e := newEnv(t, "dig", "tshark")
	h1, h2 := e.twoHosts()
	ctl1, _ := e.controlLink(h1, h2)
	c1, c2 := e.container("c1"), e.container("c2")
	data := e.startCapture(h1.netns, h1.link, "")
	ctl := e.startCapture(h1.netns, ctl1, "")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}}}))
	d1.waitReady("c1")
	d2.waitReady("c2")

	// Records cross by gossip on the control link; frames by VXLAN on the
	// data link.
	e.eventually(readyTimeout, "c1 resolves c2 and c2 resolves c1", func() error {
		if err := e.resolvesTo(c1, "10.77.0.1", "c2", "10.77.0.20"); err != nil {
			return err
		}
		return e.resolvesTo(c2, "10.77.0.1", "c1", "10.77.0.10")
	})
	e.eventually(reachTimeout, "ping c2 by name from c1", func() error {
		_, err := e.in(c1, "ping", "-c", "1", "-W", "1", "c2")
		return err
	})
	// An address block for an API attach needs the log's quorum, on the
	// control link too.
	c3 := e.container("c3")
	ep3 := e.cliAttachArgs(h2, c3, "--network", "blue", "--name", "c3")
	a3, _, _ := strings.Cut(ep3.Address, "/")
	e.eventually(readyTimeout, "c1 resolves c3", func() error {
		return e.resolvesTo(c1, "10.77.0.1", "c3", a3)
	})

	fields := []string{"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"}
	ctlRows := ctl.captureUntil("gossip on the control link", func(rows [][]string) bool {
		return slices.ContainsFunc(rows, controlPorts)
	}, fields...)
	dataRows := data.captureUntil("VXLAN on the data link", func(rows [][]string) bool {
		return slices.ContainsFunc(rows, func(r []string) bool { return r[3] == "4789" })
	}, fields...)
	for _, r := range dataRows {
		if controlPorts(r) {
			t.Fatalf("control traffic on the data link: ports %v (of %d frames)", r, len(dataRows))
		}
	}
	for _, r := range ctlRows {
		if r[2] == "4789" || r[3] == "4789" {
			t.Fatalf("VXLAN on the control link: ports %v", r)
		}
	}
	t.Logf("data link: %d frames, none gossip or raft; control link: %d frames", len(dataRows), len(ctlRows))
}
