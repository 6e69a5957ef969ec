package tests

import (
	"testing"

	"github.com/vxwire/vxwire/internal/gossip"
)

// TestAdversaryGossipFromDataAddress: with gossip on a control link
// (gossip_address), a process on a peer's data address that holds the
// cluster secret joins h1's gossip and announces a record, as a process
// that took over the data path's address would. The gate lets in only the
// peers' gossip addresses, so it is dropped and counted as a stranger and
// its record resolves nowhere. Before gossip dialled its streams from its
// bind address, this process's push-pull stream left from h2's control
// address (the kernel's choice of source), passed the gate, and its
// record resolved on h1 (and, named h2, it displaced h2's records). The
// probe: h2's daemon, from its gossip address, gets c2's record to h1.
func TestAdversaryGossipFromDataAddress(t *testing.T) {
	e := newEnv(t, "dig")
	h1, h2 := e.twoHosts()
	e.controlLink(h1, h2)
	c1, c2 := e.container("c1"), e.container("c2")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}}}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}}}))
	d1.waitReady("c1")
	d2.waitReady("c2")
	e.eventually(readyTimeout, "c1 resolves c2 (the probe)", func() error {
		return e.resolvesTo(c1, "10.77.0.1", "c2", "10.77.0.20")
	})

	before := e.mustStatus(h1).Refused
	a := e.startAttacker(h2.netns, attackSpec{Name: "h2", Bind: h2.addr, Seed: h1.gossip + ":7946",
		SecretFile: e.clusterSecret(), Network: "blue", Record: "evil", IP: "10.77.0.66"})
	e.waitRefused(h1, gossip.RefusedStranger, before[gossip.RefusedStranger])
	e.unknownTo(c1, "evil")
	e.unknownTo(c2, "evil")
	a.stop(t)
	if err := e.resolvesTo(c1, "10.77.0.1", "c2", "10.77.0.20"); err != nil {
		t.Fatalf("after the attack: %v", err)
	}
}
