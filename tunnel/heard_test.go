package tunnel

import (
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/tunnel/tunneltest"
)

// TestPlainFrameSaysPeerAlive: the first plain VXLAN datagram from a peer
// with a WireGuard key, and the first after peerSilence without any, tell
// the encrypted path the peer is alive, as gossip's join does; the frames
// in between do not, and neither does a datagram out of WireGuard (its
// session works already). The fakes run no gossip, so only frames can
// have called PeerAlive here.
func TestPlainFrameSaysPeerAlive(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un, cn := encaptest.NewNetwork(), tunneltest.NewCryptoNetwork()
	keys := testKeys(t, 2)
	h1 := startFakeHost(t, un, cn, encConfig(t, dir, 1, keys, "blue b1 10.77.0.10", "sec s1 10.79.0.10"))
	h2 := startFakeHost(t, un, cn, encConfig(t, dir, 2, keys, "blue b2 10.77.0.20", "sec s2 10.79.0.20"))
	b1, b2 := h1.port(t, filepath.Join(dir, "h1-b1")), h2.port(t, filepath.Join(dir, "h2-b2"))
	s1, s2 := h1.port(t, filepath.Join(dir, "h1-s1")), h2.port(t, filepath.Join(dir, "h2-s2"))
	alive := func(want ...string) {
		t.Helper()
		if got := h1.enc.Alive(); !slices.Equal(got, want) {
			t.Fatalf("PeerAlive calls %q, want %q", got, want)
		}
	}
	plain := frame(Broadcast, macOf("10.77.0.20"), "hello")
	sealed := frame(Broadcast, macOf("10.79.0.20"), "hello")

	alive()
	b2.Inject(plain)
	expectFrame(t, b1, plain) // PeerAlive runs before the frame is delivered
	alive("h2")
	b2.Inject(plain)
	expectFrame(t, b1, plain)
	alive("h2")

	// After peerSilence: a datagram out of WireGuard does not count, the
	// next plain one does.
	r := h1.e.sw.snap.Load().byAddr[netip.MustParseAddr("198.18.0.2")]
	r.heard.Store(time.Now().Add(-peerSilence - time.Second).UnixNano())
	s2.Inject(sealed)
	expectFrame(t, s1, sealed)
	alive("h2")
	b2.Inject(plain)
	expectFrame(t, b1, plain)
	alive("h2", "h2")
}
