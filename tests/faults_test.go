package tests

//  PFX-c1 10.77.0.10                                   PFX-c2 10.77.0.20
//    eth0 (TAP)                                          eth0 (TAP)   PFX-c3 (attached later)
//  vxwire up (PFX-h1)                                  vxwire up (PFX-h2)
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//     ^ nftables table vxfault in each host namespace:
//       loss: oifname PFX-uN counter; oifname PFX-uN numgen random mod 100 < 5 counter drop
//       cut:  every packet in or out of PFX-u1 dropped
//
//  blue: VNI 256, plain VXLAN. Gossip and the address-block log share
//  the underlay link, so they see the same loss and the same cut.

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// faultTable is the nftables table the fault tests add in a host
// namespace; the namespace is the test's, so the name cannot clash.
const faultTable = "vxfault"

// underlayLoss drops pct percent of the packets h sends on its underlay
// link, chosen at random by nftables, and counts them.
func (e *env) underlayLoss(h *host, pct int) {
	e.t.Helper()
	e.mustIn(h.netns, "nft", "add", "table", "inet", faultTable)
	e.mustIn(h.netns, "nft", "add", "chain", "inet", faultTable, "out", "{ type filter hook output priority 0; }")
	e.mustIn(h.netns, "nft", "add", "rule", "inet", faultTable, "out", "oifname", h.link, "counter")
	e.mustIn(h.netns, "nft", "add", "rule", "inet", faultTable, "out",
		"oifname", h.link, "numgen", "random", "mod", "100", "<", strconv.Itoa(pct), "counter", "drop")
}

// lossCounts returns the packets h sent on its underlay link since
// underlayLoss and how many of them its rule dropped. A packet here is
// what the output hook sees: a UDP GSO batch of VXLAN datagrams counts
// once and is dropped whole.
func (e *env) lossCounts(h *host) (sent, dropped uint64) {
	e.t.Helper()
	m := nftPackets.FindAllStringSubmatch(e.mustIn(h.netns, "nft", "list", "table", "inet", faultTable), -1)
	if len(m) != 2 {
		e.t.Fatalf("nft list table %s in %s: want 2 counters, got %d", faultTable, h.name, len(m))
	}
	sent, _ = strconv.ParseUint(m[0][1], 10, 64)
	dropped, _ = strconv.ParseUint(m[1][1], 10, 64)
	return sent, dropped
}

// cutUnderlay drops every packet in and out of h's underlay link, until
// healUnderlay or the end of the test.
func (e *env) cutUnderlay(h *host) {
	e.t.Helper()
	e.t.Cleanup(func() { _, _ = e.in(h.netns, "nft", "delete", "table", "inet", faultTable) })
	e.mustIn(h.netns, "nft", "add", "table", "inet", faultTable)
	e.mustIn(h.netns, "nft", "add", "chain", "inet", faultTable, "in", "{ type filter hook input priority 0; }")
	e.mustIn(h.netns, "nft", "add", "chain", "inet", faultTable, "out", "{ type filter hook output priority 0; }")
	e.mustIn(h.netns, "nft", "add", "rule", "inet", faultTable, "in", "iifname", h.link, "counter", "drop")
	e.mustIn(h.netns, "nft", "add", "rule", "inet", faultTable, "out", "oifname", h.link, "counter", "drop")
}

// healUnderlay removes the fault table of h.
func (e *env) healUnderlay(h *host) {
	e.t.Helper()
	e.mustIn(h.netns, "nft", "delete", "table", "inet", faultTable)
}

var nftPackets = regexp.MustCompile(`counter packets (\d+)`)

// faultDrops returns how many packets the fault rules of h dropped.
func (e *env) faultDrops(h *host) uint64 {
	e.t.Helper()
	var n uint64
	for _, m := range nftPackets.FindAllStringSubmatch(e.mustIn(h.netns, "nft", "list", "table", "inet", faultTable), -1) {
		v, _ := strconv.ParseUint(m[1], 10, 64)
		n += v
	}
	return n
}

// faultPair starts h1 and h2 with c1 (10.77.0.10) and c2 (10.77.0.20) on
// blue and the given peer_timeout ("" for the default), and waits until
// each container resolves the other's name.
func (e *env) faultPair(peerTimeout string) bluePair {
	e.t.Helper()
	var p bluePair
	p.h1, p.h2 = e.twoHosts()
	p.c1, p.c2 = e.container("c1"), e.container("c2")
	p.d1 = e.startDaemon(p.h1, e.writeConfig(p.h1, hostConf{peers: []*host{p.h2}, networks: []netConf{blue}, peerTimeout: peerTimeout,
		endpoints: []epConf{{network: "blue", name: "c1", ns: p.c1, addr: "10.77.0.10"}}}))
	p.d2 = e.startDaemon(p.h2, e.writeConfig(p.h2, hostConf{peers: []*host{p.h1}, networks: []netConf{blue}, peerTimeout: peerTimeout,
		endpoints: []epConf{{network: "blue", name: "c2", ns: p.c2, addr: "10.77.0.20"}}}))
	p.d1.waitReady("c1")
	p.d2.waitReady("c2")
	e.waitNames(p.c1, blue.gateway, map[string]string{"c2": "10.77.0.20"})
	e.waitNames(p.c2, blue.gateway, map[string]string{"c1": "10.77.0.10"})
	return p
}

// TestLossFivePercent drops 5 % of every host's underlay packets (VXLAN,
// gossip and the log alike): a 64 MiB transfer still completes with the
// same SHA-256, and an endpoint attached meanwhile becomes resolvable on
// the other host.
func TestLossFivePercent(t *testing.T) {
	e := newEnv(t, "nft", "dig")
	p := e.faultPair("")
	e.mustPing(p.c1, "10.77.0.20")
	e.underlayLoss(p.h1, 5)
	e.underlayLoss(p.h2, 5)

	e.transfer(p.c1, p.c2, "10.77.0.20", 64<<20, 3*time.Minute)

	c3 := e.container("c3")
	start := time.Now()
	ep := e.cliAttach(p.h2, "blue", c3, "c3")
	ip, _, _ := strings.Cut(ep.Address, "/")
	e.waitNames(p.c1, blue.gateway, map[string]string{"c3": ip})
	t.Logf("c3 (%s), attached on h2, resolves on h1 %v after the attach began", ip, time.Since(start).Round(time.Millisecond))
	// Under 5 % loss a ping may go unanswered: one answer is the proof.
	e.eventually(reachTimeout, "a reply from c3 under loss", func() error {
		_, err := e.in(p.c1, "ping", "-c", "1", "-W", "1", ip)
		return err
	})

	for _, h := range []*host{p.h1, p.h2} {
		sent, dropped := e.lossCounts(h)
		t.Logf("%s: nftables dropped %d of %d underlay packets (%.1f %%)", h.id, dropped, sent, 100*float64(dropped)/float64(max(sent, 1)))
		if dropped == 0 {
			t.Errorf("%s: the loss rule dropped nothing; the test proved nothing", h.id)
		}
	}
}

// cutPeerTimeout is the peer_timeout of TestPeerCutAndBack, the default,
// and cutFor how long the cut lasts: the requirement's 60 s.
const (
	cutPeerTimeout = 30 * time.Second
	cutFor         = 60 * time.Second
)

// TestPeerCutAndBack cuts h1 off the underlay for 60 s, twice the default
// peer_timeout: each host declares the other dead and drops its names.
// When the link comes back, names and traffic must return without any
// restart within peer_timeout plus one second.
func TestPeerCutAndBack(t *testing.T) {
	e := newEnv(t, "nft", "dig")
	p := e.faultPair(cutPeerTimeout.String())
	e.mustPing(p.c1, "10.77.0.20")

	cutAt := time.Now()
	e.cutUnderlay(p.h1)
	// The cut shows: each side forgets the other's name.
	for _, c := range []struct {
		from *netns
		name string
	}{{p.c1, "c2"}, {p.c2, "c1"}} {
		e.eventually(cutPeerTimeout+10*time.Second, c.from.name+" forgets "+c.name, func() error {
			return e.hasStatus(c.from, blue.gateway, c.name, "NXDOMAIN")
		})
	}
	t.Logf("names gone on both sides %v after the cut", time.Since(cutAt).Round(time.Millisecond))
	if wait := time.Until(cutAt.Add(cutFor)); wait > 0 {
		// Hold the cut for the requirement's 60 s; this wait is the fault
		// being tested, not a poll.
		time.Sleep(wait)
	}
	e.mustNotPing(p.c1, "10.77.0.20")
	if n := e.faultDrops(p.h1); n == 0 {
		t.Fatalf("the cut dropped no packets")
	}

	e.healUnderlay(p.h1)
	healed := time.Now()
	bound := cutPeerTimeout + time.Second
	deadline := healed.Add(bound + 10*time.Second) // beyond the bound, to report how late
	back := func() error {
		if err := e.resolvesTo(p.c1, blue.gateway, "c2", "10.77.0.20"); err != nil {
			return err
		}
		if err := e.resolvesTo(p.c2, blue.gateway, "c1", "10.77.0.10"); err != nil {
			return err
		}
		_, err := e.in(p.c1, "ping", "-c", "1", "-W", "1", "10.77.0.20")
		return err
	}
	var err error
	for err = back(); err != nil && time.Now().Before(deadline); err = back() {
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(healed)
	if err != nil {
		t.Fatalf("names and traffic not back %v after the link came back: %v", took.Round(time.Millisecond), err)
	}
	t.Logf("names both ways and a ping back %v after the link came back (peer_timeout %v)", took.Round(time.Millisecond), cutPeerTimeout)
	if took > bound {
		t.Errorf("names and traffic came back after %v, want at most peer_timeout + 1 s = %v", took.Round(time.Millisecond), bound)
	}
	e.mustPing(p.c2, "10.77.0.10")
}
