package crypto

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.zx2c4.com/wireguard/device"
)

// TestPeerAliveAfterLostInitiation: a's first initiation to b is lost
// because b's port is not open yet (b is starting). When b is up, a
// datagram from a waits out WireGuard's 5 s REKEY_TIMEOUT; the control
// phase shows nothing arrives within a second. Once each side hears the
// other is alive (PeerAlive, as gossip reports a join), the next
// datagram arrives within a second, whichever of the two keys is the
// lower one (the side that forces the handshake).
func TestPeerAliveAfterLostInitiation(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	for _, senderLower := range []bool{true, false} {
		t.Run(fmt.Sprintf("senderLower=%t", senderLower), func(t *testing.T) {
			a, b := newNode(t, 1), newNode(t, 2)
			if initiates(a.key.Public(), b.key.Public()) != senderLower {
				a.key, b.key = b.key, a.key
			}
			// Find a free port for b, then close it again: b "is starting".
			// The first life of b is a node of its own, with its own reader.
			old := &node{key: b.key, tunnel: b.tunnel, id: b.id}
			old.start(t, nil)
			port := old.dev.LocalAddr().Port()
			bPeer := old.peer()
			bPeer.Name = "b"
			old.dev.Close()

			a.start(t, func(c *Config) { c.Peers = []Peer{bPeer} })
			sendBatch(t, a, b.id, 0, 1, 100) // initiation to a closed port
			eventually(t, 5*time.Second, "a's first initiation", func() bool {
				st := a.dev.Status()
				return len(st) == 1 && st[0].TxBytes > 0
			})

			b.start(t, func(c *Config) {
				c.ListenPort = port
				aPeer := a.peer()
				aPeer.Name = "a"
				c.Peers = []Peer{aPeer}
			})
			sendBatch(t, a, b.id, 1, 1, 100)
			b.expectNothing(t, time.Second) // control: the 5 s stall

			start := time.Now()
			a.dev.PeerAlive("b")
			b.dev.PeerAlive("a")
			sendBatch(t, a, b.id, 2, 1, 100)
			got := b.collect(1, time.Second)
			if len(got) == 0 {
				t.Fatalf("no datagram within 1s of PeerAlive")
			}
			t.Logf("first datagram %v after PeerAlive", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestPeerAliveAfterPeerRestart: b restarts on the same port, losing its
// session, while a still holds it and sends into it: b drops what it
// cannot open, and a would not notice for WireGuard's 15 s (the control
// phase shows nothing arrives within a second). When each side hears the
// other is alive, the next datagram arrives within a second, whichever of
// the two is the lower key: PeerAlive still replaces a session that does
// not work, as it leaves one that does.
func TestPeerAliveAfterPeerRestart(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	for _, senderLower := range []bool{true, false} {
		t.Run(fmt.Sprintf("senderLower=%t", senderLower), func(t *testing.T) {
			a, b := newNode(t, 1), newNode(t, 2)
			if initiates(a.key.Public(), b.key.Public()) != senderLower {
				a.key, b.key = b.key, a.key
			}
			old := &node{key: b.key, tunnel: b.tunnel, id: b.id}
			old.start(t, nil)
			port := old.dev.LocalAddr().Port()
			bPeer := old.peer()
			bPeer.Name = "b"
			a.start(t, func(c *Config) { c.Peers = []Peer{bPeer} })
			aPeer := a.peer()
			aPeer.Name = "a"
			if err := old.dev.Reconfigure(Config{PrivateKey: old.key, TunnelAddr: old.tunnel,
				ListenAddr: netip.MustParseAddr("127.0.0.1"), Peers: []Peer{aPeer}}); err != nil {
				t.Fatal(err)
			}
			establish(t, a, old)
			old.dev.Close()

			b.start(t, func(c *Config) {
				c.ListenPort = port
				c.Peers = []Peer{aPeer}
			})
			sendBatch(t, a, b.id, 1, 1, 100)
			b.expectNothing(t, time.Second) // control: a sends into the lost session

			start := time.Now()
			a.dev.PeerAlive("b")
			b.dev.PeerAlive("a")
			eventually(t, time.Second, "a datagram after PeerAlive", func() bool {
				sendBatch(t, a, b.id, 2, 1, 100)
				return len(b.collect(1, 50*time.Millisecond)) > 0
			})
			t.Logf("first datagram %v after PeerAlive", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestPeerAliveKeepsWorkingSession: gossip reports a peer re-joined that
// never went away (memberlist on a loaded host declared it dead, then
// heard from it again), while datagrams flow both ways. PeerAlive must
// leave the session alone: no handshake, on either side, and no gap in
// the traffic. Before, it expired the session and forced a handshake, at
// the cost of a round trip with nothing sent; and of an outage when that
// handshake failed (TestRotationLatePeer).
func TestPeerAliveKeepsWorkingSession(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	a, b := newNode(t, 1), newNode(t, 2)
	if !initiates(a.key.Public(), b.key.Public()) {
		a.key, b.key = b.key, a.key // a forces the handshakes
	}
	a.start(t, nil)
	b.start(t, nil)
	connect(t, a, b)
	a.dev.mu.Lock()
	cfg := a.dev.cfg
	a.dev.mu.Unlock()
	cfg.Peers = append([]Peer(nil), cfg.Peers...)
	cfg.Peers[0].Name = "b"
	if err := a.dev.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	establish(t, a, b)
	// b's side of the handshake completes with a's first datagram under it.
	eventually(t, 5*time.Second, "the handshake on both sides", func() bool {
		return !b.dev.Status()[0].LastHandshake.IsZero()
	})
	hsA, hsB := a.dev.Status()[0].LastHandshake, b.dev.Status()[0].LastHandshake

	stop := make(chan struct{})
	done := make(chan struct{}, 2)
	for _, pair := range [][2]*node{{a, b}, {b, a}} {
		go func() {
			defer func() { done <- struct{}{} }()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for seq := uint32(0); ; seq++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				_ = pair[0].dev.Write([][]byte{vxlanDatagram(200, seq)}, pair[1].id)
			}
		}()
	}
	defer func() { close(stop); <-done; <-done }()
	eventually(t, 5*time.Second, "datagrams from b", func() bool { return len(a.collect(1, 100*time.Millisecond)) > 0 })

	// Once WireGuard's rate limit on initiations (RekeyTimeout after the
	// last) no longer hides a forced handshake:
	time.Sleep(time.Until(hsA.Add(device.RekeyTimeout + 500*time.Millisecond)))
	a.dev.PeerAlive("b")
	// Past every retry PeerAlive would make (greetBackoff sums to 3.75 s)
	// is not needed: a forced handshake would complete at the first.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if got := b.collect(1, time.Second); len(got) == 0 {
			t.Fatal("a's datagrams stopped after PeerAlive")
		}
		if got := a.collect(1, time.Second); len(got) == 0 {
			t.Fatal("b's datagrams stopped after PeerAlive")
		}
	}
	if h := a.dev.Status()[0].LastHandshake; !h.Equal(hsA) {
		t.Errorf("a handshook again at PeerAlive (%v, before %v)", h, hsA)
	}
	if h := b.dev.Status()[0].LastHandshake; !h.Equal(hsB) {
		t.Errorf("b handshook again at PeerAlive (%v, before %v)", h, hsB)
	}
}
