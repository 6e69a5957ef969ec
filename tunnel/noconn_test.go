package tunnel

import (
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

// TestEncryptedWithoutDeviceDrops switches a frame of an encrypted network
// to a remote MAC on a host that has no WireGuard device. Before the fix
// flush wrote through the nil connection and the daemon panicked; now the
// frames are dropped and counted.
func TestEncryptedWithoutDeviceDrops(t *testing.T) {
	e, _ := hotPathEngine(t, func(c *config.Config) { c.Networks[0].Encrypted = true })
	if e.enc != nil {
		t.Fatal("test engine has a WireGuard device")
	}
	p := e.ports[epKey{"blue", "a"}]
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	b := e.poolFor(p.net.mtu).get()
	fillBatch(b, 8, remote, p.mac)
	e.switchFromPort(p, b, 8)
	if got := e.host.drops[dropNoConn].Load(); got != 8 {
		t.Fatalf("no_conn drops = %d, want 8", got)
	}
	if got := e.peers["h2"].stats.drops[dropNoConn].Load(); got != 8 {
		t.Fatalf("peer no_conn drops = %d, want 8", got)
	}
}
