package gossip

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestHostNetworksOfHostThatLeft: a host's config-file networks reach the
// others, and stay listed after the host leaves (or fails), since its file
// still holds them when it comes back. Before, they were forgotten as
// soon as the host was dropped, and an API network could take their VNI
// while the host was down.
func TestHostNetworksOfHostThatLeft(t *testing.T) {
	cs := newTestTrio(t, func(c *Config) { c.DeadAfter = 3 * time.Second })
	red := HostNetwork{Name: "red", VNI: 300, Subnet: netip.MustParsePrefix("10.78.0.0/24")}
	cs[1].SetLocalNetworks([]HostNetwork{red})
	cs[2].SetLocalNetworks([]HostNetwork{{Name: "Bad!", VNI: 301, Subnet: netip.MustParsePrefix("10.79.0.0/24")}})
	red.Host = "h2"
	has := func(c *Cluster) bool { return slices.Contains(c.HostNetworks(), red) }
	eventually(t, 5*time.Second, func() bool { return has(cs[0]) }, "h1 lists %v", cs[0].HostNetworks())
	if ns := cs[0].HostNetworks(); len(ns) != 1 {
		t.Errorf("h1 lists %v; want only h2's red (h3's is not valid)", ns)
	}
	if err := cs[1].Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return int(cs[0].numLive.Load()) == 2 }, "h2's leave not seen")
	cs[0].mu.Lock()
	dropped := cs[0].tab.hosts["h2"].dropped
	cs[0].mu.Unlock()
	if !dropped {
		t.Fatal("h2 is not dropped after it left")
	}
	if !has(cs[0]) {
		t.Errorf("h2's red is forgotten once h2 left: %v", cs[0].HostNetworks())
	}
}
