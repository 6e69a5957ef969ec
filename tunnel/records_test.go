package tunnel

import (
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
)

func testRecord(host, network, name, ip string, mac byte, aliases ...string) gossip.Record {
	return gossip.Record{Network: network, Name: name, Aliases: aliases, IP: netip.MustParseAddr(ip),
		MAC: [6]byte{2, 0, 0, 0, 0, mac}, Host: host}
}

// TestRemoteEndpoints checks the cluster-wide view: other hosts' records
// on networks this host carries, with the network's prefix length, and
// none of this host's own, of unknown networks, or that break the rules.
func TestRemoteEndpoints(t *testing.T) {
	nets := map[string]*network{"blue": {cfg: config.Network{Name: "blue", VNI: 256,
		Subnet: netip.MustParsePrefix("10.77.0.0/24"), Gateway: netip.MustParseAddr("10.77.0.1")}}}
	recs := []gossip.Record{
		testRecord("h2", "blue", "web", "10.77.0.20", 0x20, "www"),
		testRecord("h1", "blue", "self", "10.77.0.10", 0x10),     // this host's own
		testRecord("h3", "red", "db", "10.88.0.5", 0x05),         // a network h1 does not carry
		testRecord("h3", "blue", "outside", "10.99.0.5", 0x06),   // outside the subnet
		testRecord("h3", "blue", "gateway", "10.77.0.1", 0x07),   // the gateway's address
		testRecord("h3", "blue", "Bad_Name", "10.77.0.30", 0x08), // not a DNS label
	}
	got := remoteEndpoints(recs, "h1", nets)
	if len(got) != 1 {
		t.Fatalf("got %d endpoints %+v, want only h2's web", len(got), got)
	}
	ep := got[0]
	if ep.Network != "blue" || ep.Name != "web" || ep.Host != "h2" || ep.Address != "10.77.0.20/24" ||
		ep.MAC != "02:00:00:00:00:20" || len(ep.Aliases) != 1 || ep.Aliases[0] != "www" || ep.Source != "gossip" {
		t.Fatalf("got %+v", ep)
	}
}

// TestNameHolder checks the rule behind refusing a second claim: a name
// another host's record holds on the same network, in any case, is taken;
// the same name on another network, this host's own record, and an alias
// are not.
func TestNameHolder(t *testing.T) {
	recs := []gossip.Record{
		testRecord("h2", "blue", "web", "10.77.0.20", 0x20, "shared"),
		testRecord("h1", "blue", "mine", "10.77.0.10", 0x10),
		testRecord("h3", "red", "db", "10.88.0.5", 0x05),
	}
	for _, tc := range []struct{ network, name, want string }{
		{"blue", "web", "h2"},
		{"blue", "WEB", "h2"},
		{"red", "web", ""},
		{"blue", "mine", ""},
		{"blue", "shared", ""},
		{"blue", "db", ""},
		{"red", "db", "h3"},
	} {
		if got := nameHolder(recs, "h1", tc.network, tc.name); got != tc.want {
			t.Errorf("nameHolder(%s, %s) = %q, want %q", tc.network, tc.name, got, tc.want)
		}
	}
}
