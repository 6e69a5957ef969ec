package tests

//  PFX-c1 10.77.0.11  PFX-c2 10.77.0.12          PFX-c3 10.77.0.21  PFX-c4 10.77.0.22
//        eth0 \        / eth0                           eth0 \        / eth0
//        vxwire up (PFX-h1)                              vxwire up (PFX-h2)
//        PFX-u1 198.18.0.1/24 =========== veth =========== PFX-u2 198.18.0.2/24
//          ^ tshark -f 'arp or (udp port 4789)'
//
//  network blue: VNI 256, 10.77.0.0/24. Neighbour caches are flushed in
//  every container, then each pings the two containers of the other host;
//  c1 also pings 10.77.0.99, which nothing holds (its ARP is flooded).

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestNoARPAcrossUnderlay checks proxy ARP: once the records are known,
// containers' ARP requests for containers on another host are answered by
// their own host's daemon with the remote container's MAC, and no ARP
// frame travels inside VXLAN on the underlay.
func TestNoARPAcrossUnderlay(t *testing.T) {
	e := newEnv(t, "tshark", "dig")
	h1, h2 := e.twoHosts()
	type ctr struct {
		ns   *netns
		name string
		addr string
	}
	left := []ctr{{e.container("c1"), "c1", "10.77.0.11"}, {e.container("c2"), "c2", "10.77.0.12"}}
	right := []ctr{{e.container("c3"), "c3", "10.77.0.21"}, {e.container("c4"), "c4", "10.77.0.22"}}
	conf := func(peer *host, cs []ctr) hostConf {
		c := hostConf{peers: []*host{peer}, networks: []netConf{blue}}
		for _, x := range cs {
			c.endpoints = append(c.endpoints, epConf{network: "blue", name: x.name, ns: x.ns, addr: x.addr})
		}
		return c
	}
	e.startInTurn([]*host{h1, h2}, []hostConf{conf(h2, left), conf(h1, right)})

	// Records known on both sides: every name resolves on both hosts.
	for _, from := range []ctr{left[0], right[0]} {
		for _, to := range append(left, right...) {
			e.eventually(dnsTimeout, from.name+" resolves "+to.name, func() error {
				return e.resolvesTo(from.ns, blue.gateway, to.name, to.addr)
			})
		}
	}
	macs := map[string]string{}
	all := append(append([]ctr(nil), left...), right...)
	for _, c := range all {
		macs[c.addr] = e.linkMAC(c.ns, "eth0")
	}

	capt := e.startCapture(h1.netns, h1.link, "arp or (udp port 4789)")
	for _, c := range all {
		e.mustIn(c.ns, "ip", "neigh", "flush", "all")
	}
	type pair struct{ from, to ctr }
	var pairs []pair
	for _, l := range left {
		for _, r := range right {
			pairs = append(pairs, pair{l, r}, pair{r, l})
		}
	}
	// A reply needs ARP resolved on both sides; more than one reply is not
	// the point here, so a loaded machine's late reply is no failure.
	for _, p := range pairs {
		out, err := e.in(p.from.ns, "ping", "-c", "3", "-i", "0.2", "-W", "3", p.to.addr)
		if err != nil {
			t.Errorf("ping from %s to %s after flushing neighbours: no reply: %v", p.from.name, p.to.name, err)
		} else if !strings.Contains(out, " 3 received") {
			t.Logf("ping from %s to %s: not every reply in time:\n%s", p.from.name, p.to.name, out)
		}
	}
	for _, p := range pairs {
		out := e.mustIn(p.from.ns, "ip", "neigh", "show", p.to.addr, "dev", "eth0")
		if !strings.Contains(out, "lladdr "+macs[p.to.addr]) {
			t.Errorf("%s's neighbour entry for %s (%s): want lladdr %s (its MAC), got %q",
				p.from.name, p.to.name, p.to.addr, macs[p.to.addr], strings.TrimSpace(out))
		}
	}

	// Control: ARP for an address no record holds is flooded to the other
	// host, so the capture shows that it sees ARP inside VXLAN.
	if out, err := e.in(left[0].ns, "ping", "-c", "1", "-W", "1", unknownAddr); err == nil {
		t.Fatalf("ping of %s, which nothing holds, got a reply:\n%s", unknownAddr, out)
	}

	// The capture must hold the pings (inner ICMP, both ways, each pair)
	// and the control before its ARP count means anything.
	capt.captureUntil("each pair's echo requests and replies, and the flooded ARP", func(rows [][]string) bool {
		for _, p := range pairs {
			if !pinged(p.from.addr, p.to.addr, 4, 5)(rows) {
				return false
			}
		}
		return slices.ContainsFunc(rows, func(r []string) bool { return r[2] == "256" && last(r[3]) == "0x0806" })
	}, vxlanFields...)
	rows, err := capt.displayed("arp", "vxlan.vni", "arp.opcode", "arp.src.proto_ipv4", "arp.dst.proto_ipv4")
	if err != nil {
		t.Fatal(err)
	}
	var inner, control, outer int
	for _, r := range rows {
		switch {
		case r[0] == "":
			outer++
		case last(r[3]) == unknownAddr:
			control++
		default:
			inner++
			t.Errorf("ARP inside VXLAN (VNI %s) on the underlay: opcode %s, %s asks for %s", r[0], r[1], last(r[2]), last(r[3]))
		}
	}
	if control == 0 {
		t.Errorf("tshark -Y arp decoded no ARP for %s inside VXLAN: the check above proves nothing", unknownAddr)
	}
	t.Logf("underlay: %d ARP frames for known addresses inside VXLAN, %d for %s (flooded, the control), %d underlay ARP frames between the hosts (allowed)",
		inner, control, unknownAddr, outer)
}

// unknownAddr is an address of blue that no endpoint holds.
const unknownAddr = "10.77.0.99"

// displayed decodes the capture with the display filter filter and returns
// one row per matching frame, one column per field, like fields.
func (c *capture) displayed(filter string, fields ...string) ([][]string, error) {
	args := []string{"-n", "-r", c.file, "-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	out, _, err := run(cmdTimeout, "tshark", args...)
	if err != nil {
		return nil, fmt.Errorf("decode %s with -Y %q: %w", c.file, filter, err)
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
