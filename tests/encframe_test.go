package tests

//  PFX-ca 10.79.0.10 (sec)  PFX-pa 10.77.0.10 (blue)     PFX-cb 10.79.0.20 (sec)  PFX-pb 10.77.0.20 (blue)
//  vxwire up (PFX-h1)                                    vxwire up (PFX-h2)
//  PFX-u1 198.18.0.1/24 ============ veth ============== PFX-u2 198.18.0.2/24
//     ^ nftables table vxnogossip in each host namespace: gossip (port
//       7946, UDP and TCP) dropped, so no join is ever reported
//
//  sec: VNI 4000, encrypted; blue: VNI 256, plain. Each try starts one
//  daemon, lets its sec container ping the other (the WireGuard initiation
//  is lost: the other host is not up), starts the other daemon, and pings
//  on sec again, after a ping across blue or not.

import (
	"strings"
	"testing"
	"time"
)

// noGossipTable is the nftables table that drops gossip in a host
// namespace of TestEncryptedHandshakeOnPlainFrame.
const noGossipTable = "vxnogossip"

// TestEncryptedHandshakeOnPlainFrame: with gossip blocked, so that no
// join is ever reported, the first plain VXLAN frame from a peer is what
// says it is alive. After a host's first WireGuard initiation was lost
// (its peer was not up yet), a ping across the plain network makes the
// next encrypted packet arrive within a second, whichever host started
// first. The control try, with no plain frame, shows the stall the frame
// saves: WireGuard's own retry comes 5 s after the lost initiation (4.0 s
// after the second host was up). Before the first plain frame counted,
// the tries with a ping across blue stalled the same way, 2.05 s after the
// blue ping (against 7-9 ms now).
func TestEncryptedHandshakeOnPlainFrame(t *testing.T) {
	e := newEnv(t, "nft")
	u1, u2 := e.twoHosts()
	h1, h2 := e.withKey(u1), e.withKey(u2)
	ca, cb, pa, pb := e.container("ca"), e.container("cb"), e.container("pa"), e.container("pb")
	for _, u := range []*host{u1, u2} {
		e.t.Cleanup(func() { _, _ = e.in(u.netns, "nft", "delete", "table", "inet", noGossipTable) })
		e.mustIn(u.netns, "nft", "add", "table", "inet", noGossipTable)
		e.mustIn(u.netns, "nft", "add", "chain", "inet", noGossipTable, "in", "{ type filter hook input priority 0; }")
		e.mustIn(u.netns, "nft", "add", "rule", "inet", noGossipTable, "in", "meta", "l4proto", "{ tcp, udp }", "th", "dport", "7946", "counter", "drop")
	}
	secret := e.clusterSecret()
	nets := []encNetwork{{secNet, true}, {blue, false}}
	cfg1 := e.file("h1.toml", e.renderEnc(h1, encConf{peers: []*encHost{h2}, networks: nets, secret: secret,
		endpoints: []epConf{{network: "sec", name: "ca", ns: ca, addr: "10.79.0.10"}, {network: "blue", name: "pa", ns: pa, addr: "10.77.0.10"}}}))
	cfg2 := e.file("h2.toml", e.renderEnc(h2, encConf{peers: []*encHost{h1}, networks: nets, secret: secret,
		endpoints: []epConf{{network: "sec", name: "cb", ns: cb, addr: "10.79.0.20"}, {network: "blue", name: "pb", ns: pb, addr: "10.77.0.20"}}}))

	type side struct {
		h             *encHost
		cfg           string
		sec, plain    *netns
		eps           []string
		secIP, blueIP string
	}
	s1 := side{h1, cfg1, ca, pa, []string{"ca", "pa"}, "10.79.0.10", "10.77.0.10"}
	s2 := side{h2, cfg2, cb, pb, []string{"cb", "pb"}, "10.79.0.20", "10.77.0.20"}
	// try starts first, then second, pings across blue from second's plain
	// container when plainFrame, and returns how long first's container
	// took to get a reply across sec.
	try := func(first, second side, plainFrame bool) time.Duration {
		t.Helper()
		d1 := e.startDaemon(first.h.host, first.cfg)
		d1.waitReady(first.eps...)
		if _, err := e.in(first.sec, "ping", "-c", "1", "-W", "1", second.secIP); err == nil {
			t.Fatalf("ping answered before %s started", second.h.id)
		}
		d2 := e.startDaemon(second.h.host, second.cfg)
		d2.waitReady(second.eps...)
		if plainFrame {
			e.mustPing(second.plain, first.blueIP)
		}
		// One ping a second until one is answered: a neighbour that does
		// not answer ARP within 3 s fails a single long ping.
		start := time.Now()
		for {
			out, err := e.in(first.sec, "ping", "-c", "1", "-W", "1", second.secIP)
			if err == nil && strings.Contains(out, " 1 received") {
				break
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("no reply across sec from %s within 15 s: %v\n%s", first.h.id, err, out)
			}
		}
		took := time.Since(start)
		for _, dm := range []*daemon{d1, d2} {
			if err := dm.stop(); err != nil {
				t.Fatalf("daemon %s: %v", dm.h.id, err)
			}
		}
		return took
	}

	control := try(s1, s2, false)
	t.Logf("no plain frame (control): first reply across sec after %v", control.Round(time.Millisecond))
	if control < 2*time.Second {
		t.Fatalf("first reply across sec after %v without a plain frame: want WireGuard's retry stall, so gossip was not blocked or something else forced a handshake", control.Round(time.Millisecond))
	}
	for _, order := range [][2]side{{s1, s2}, {s2, s1}} {
		took := try(order[0], order[1], true)
		t.Logf("%s started first, a ping across blue: first reply across sec after %v", order[0].h.id, took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("%s started first: first reply across sec after %v, want at most 1 s", order[0].h.id, took.Round(time.Millisecond))
		}
	}
	// Gossip was blocked throughout: its packets were dropped.
	for _, u := range []*host{u1, u2} {
		if !strings.Contains(e.mustIn(u.netns, "nft", "list", "table", "inet", noGossipTable), "counter packets") ||
			strings.Contains(e.mustIn(u.netns, "nft", "list", "table", "inet", noGossipTable), "counter packets 0 ") {
			t.Errorf("%s dropped no gossip", u.name)
		}
	}
}
