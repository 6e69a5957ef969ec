package tests

import (
	"fmt"
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
