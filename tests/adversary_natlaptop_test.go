package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAdversaryNATGossipSpoofedTunnelAddr: a stranger on the server's
// underlay sends gossip from the laptop's tunnel address, the address the
// server gossips with inside WireGuard. Before this fix's underlay check,
// the gate let such a datagram through to memberlist, since the laptop's
// tunnel address is an admitted gossip address; now it is refused as a
// stranger before memberlist reads a byte, and the laptop's own gossip,
// which arrives through its tunnel from the same address, still works.
func TestAdversaryNATGossipSpoofedTunnelAddr(t *testing.T) {
	e := newNetEnv(t, "dig", "nft", "socat")
	n := e.startNATLaptop()
	e.resolves(n.c1, "c2.blue", "10.77.0.20") // the tunnel path is up

	// The attacker sits in the NAT namespace and owns the laptop's tunnel
	// address there; the server accepts its packets (no reverse-path
	// filter) and routes its answers back.
	e.mustIn(n.nat, "ip", "addr", "add", n.laptopTunnel+"/32", "dev", n.n0)
	// Its forged source must survive the NAT's masquerade.
	e.mustIn(n.nat, "nft", "insert rule ip nat post ip saddr "+n.laptopTunnel+" return")
	e.sysctl(n.h1.netns, "net/ipv4/conf/all/rp_filter", "0")
	e.sysctl(n.h1.netns, "net/ipv4/conf/"+n.h1.link+"/rp_filter", "0")
	e.mustIn(n.h1.netns, "ip", "route", "add", n.laptopTunnel+"/32", "via", natAddr)

	before := e.mustStatus(n.h1.host).Refused
	for i := range 5 {
		e.in(n.nat, "sh", "-c", fmt.Sprintf("echo forged-%d | socat -u - UDP4-SENDTO:%s:7946,bind=%s:7946", i, n.h1.addr, n.laptopTunnel))
	}
	e.in(n.nat, "sh", "-c", fmt.Sprintf("echo forged | timeout 5 socat - TCP4:%s:7946,bind=%s,connect-timeout=3", n.h1.addr, n.laptopTunnel))
	e.eventually(20*time.Second, "the forged gossip refused as a stranger's", func() error {
		after := e.mustStatus(n.h1.host).Refused
		if got := after["gossip_stranger"] - before["gossip_stranger"]; got < 6 {
			return fmt.Errorf("gossip_stranger rose by %d, want 6 (5 datagrams, 1 connection)", got)
		}
		if after["gossip_unauthenticated"] != before["gossip_unauthenticated"] {
			return permanent(fmt.Errorf("forged gossip reached memberlist: unauthenticated %d → %d", before["gossip_unauthenticated"], after["gossip_unauthenticated"]))
		}
		return nil
	})
	t.Logf("refused before %v after %v", before, e.mustStatus(n.h1.host).Refused)
	// The laptop's real gossip from that address, through its tunnel,
	// still reaches the server.
	e.resolves(n.c1, "c2.blue", "10.77.0.20")
	e.mustIn(n.c1, "ping", "-c", "1", "-W", "2", "10.77.0.20")
}

// TestAdversaryNATImpostorLaptop: someone behind the same NAT, without the
// laptop's private key, runs a daemon claiming to be the laptop (same
// name, tunnel address and servers). The server knows the laptop only by
// its key and no address, so nothing else could tell them apart: its
// handshakes are answered by nothing, its names never reach the server,
// and the server learns no endpoint for the laptop. The real laptop, on
// the same path, then joins.
func TestAdversaryNATImpostorLaptop(t *testing.T) {
	e := newNetEnv(t, "dig", "tshark", "nft")
	n := e.natLaptop()
	server, laptop := e.natConfigs(n)
	d1 := e.startDaemon(n.h1.host, e.file("h1.toml", server))
	d1.waitReady("c1")
	capt := e.startCapture(n.h1.netns, n.h1.link, "udp port "+fmt.Sprint(wgPort))

	evil := e.genKey("vxwire", "evil")
	impostor := strings.Replace(laptop, n.lap.key.file, evil.file, 1)
	if impostor == laptop {
		t.Fatal("the impostor's config still holds the laptop's key")
	}
	di := e.startDaemon(n.lap.host, e.file("impostor.toml", impostor))
	di.waitReady("c2")

	// Its handshake initiations (type 1) reach the server; none is
	// answered (type 2), since they are not made with the laptop's key.
	rows := capt.captureUntil("three handshake initiations from the NAT", func(rows [][]string) bool {
		k := 0
		for _, r := range rows {
			if r[0] == natAddr && r[2] == "1" {
				k++
			}
		}
		return k >= 3
	}, "ip.src", "ip.dst", "wg.type")
	for _, r := range rows {
		if r[0] == n.h1.addr {
			t.Fatalf("the server answered the impostor: %q", r)
		}
	}
	st := e.mustStatus(n.h1.host)
	if p, err := wgPeer(st, "laptop"); err != nil || p.Endpoint != "" || !p.LastHandshake.IsZero() {
		t.Fatalf("server's view of the laptop after the impostor: %+v %v", p, err)
	}
	if out, _ := e.in(n.c1, "dig", "+short", "+time=1", "+tries=1", "@10.77.0.1", "c2.blue"); strings.TrimSpace(out) != "" {
		t.Fatalf("the impostor's name reached the server: %q", out)
	}

	// The same path with the laptop's key works.
	if err := di.stop(); err != nil {
		t.Logf("impostor stop: %v", err)
	}
	dl := e.startDaemon(n.lap.host, e.file("laptop.toml", laptop))
	dl.waitReady("c2")
	e.resolves(n.c1, "c2.blue", "10.77.0.20")
	e.eventually(30*time.Second, "c1 pings the laptop's c2", func() error {
		_, err := e.in(n.c1, "ping", "-c", "1", "-W", "1", "10.77.0.20")
		return err
	})
}
