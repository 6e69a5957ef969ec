package tests

// ICMP echo egress: a container's ping to the outside is answered through
// the gateway, and the deny list holds for it as for TCP and UDP. The
// topology is egressTopo's (adversary_egress_test.go).

import (
	"strconv"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// inEchos reads how many ICMP echo requests namespace n's kernel has
// received (InEchos in /proc/net/snmp).
func (e *env) inEchos(n *netns) int {
	e.t.Helper()
	out := e.mustIn(n, "cat", "/proc/net/snmp")
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "InEchos" && i < len(f) {
				v, err := strconv.Atoi(f[i])
				if err != nil {
					e.t.Fatalf("InEchos %q: %v", f[i], err)
				}
				return v
			}
		}
	}
	e.t.Fatalf("no InEchos in /proc/net/snmp of %s:\n%s", n.name, out)
	return 0
}

// TestEgressPing: `ping 198.18.0.9` from a container reaches a namespace
// outside the overlay through the gateway and is answered, every reply
// matched to its request, and the flow shows in the gateway's counters.
// Before this change every ICMP packet to the outside was dropped by the
// gateway's frame filter.
func TestEgressPing(t *testing.T) {
	e := newEnv(t, "ping")
	tp := e.egressTopo("")
	before := e.inEchos(tp.out)
	e.mustPing(tp.c1, "198.18.0.9")
	out, err := e.in(tp.c1, "ping", "-c", "20", "-i", "0.05", "-s", "1000", "-W", "2", "198.18.0.9")
	if err != nil || !strings.Contains(out, " 20 received") {
		t.Fatalf("20 pings of 1000 bytes: want 20 replies: %v\n%s", err, out)
	}
	if got := e.inEchos(tp.out) - before; got < 24 {
		t.Fatalf("the outside received %d echo requests, want at least 24", got)
	}
	// A second container pings at the same time: its replies are its own.
	if out, err := e.in(tp.c3, "ping", "-c", "3", "-W", "2", "198.18.0.10"); err != nil || !strings.Contains(out, " 3 received") {
		t.Fatalf("c3's pings: %v\n%s", err, out)
	}
	if g := gatewayOf(e.mustStatus(tp.h1), "blue"); g.EgressICMPTotal < 2 {
		t.Fatalf("blue's gateway stats %+v, want the echo flows counted", g)
	}
}

// TestAdversaryEgressPingHosts: a container pings its own host's underlay
// address and a peer's. Both are on the egress deny list: each request is
// answered at once with ICMP "administratively prohibited" from the
// gateway, counted, and neither host's kernel receives an echo request,
// while the same container's ping to an outside address is answered.
// Before this change no ping left the overlay at all; a relay without the
// deny list would have let a container probe every host of the cluster
// from the host's own address.
func TestAdversaryEgressPingHosts(t *testing.T) {
	e := newEnv(t, "ping")
	tp := e.egressTopo("")
	e.mustPing(tp.c1, "198.18.0.9") // the probe: the path works

	h1Before, h2Before := e.inEchos(tp.h1.netns), e.inEchos(tp.h2.netns)
	denied := gatewayDrops(e.mustStatus(tp.h1), "blue", api.DropEgressDenied)
	for _, dst := range []string{"198.18.0.1", "198.18.0.2"} {
		out, err := e.in(tp.c1, "ping", "-c", "3", "-W", "1", dst)
		if err == nil || !strings.Contains(out, "3 packets transmitted, 0 received") {
			t.Fatalf("ping %s: want no reply: %v\n%s", dst, err, out)
		}
		if !strings.Contains(out, "From 10.77.0.1") || !strings.Contains(out, "Packet filtered") {
			t.Fatalf("ping %s: want 'Packet filtered' from the gateway:\n%s", dst, out)
		}
	}
	e.waitGatewayDrops(tp.h1, "blue", api.DropEgressDenied, denied+6)
	if d1, d2 := e.inEchos(tp.h1.netns)-h1Before, e.inEchos(tp.h2.netns)-h2Before; d1 != 0 || d2 != 0 {
		t.Fatalf("echo requests reached the hosts: h1 %d, h2 %d", d1, d2)
	}
	e.mustPing(tp.c1, "198.18.0.9") // still works after the refusals
}
