package crypto

import (
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/device"
)

// greetBackoff are the waits before each handshake PeerAlive forces: the
// first at once, the others longer each time so that a round trip slower
// than the previous wait can still complete. After the last, WireGuard's
// own timers carry on.
var greetBackoff = []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// sessionProbe is how long PeerAlive first waits for a packet from a
// peer that has a session young enough to work: one arriving shows it
// does, and it is left alone. Any traffic at all sends one sooner.
const sessionProbe = 100 * time.Millisecond

// freshFor is how old a completed handshake may be at PeerAlive and still
// count as one with the peer's new life: a peer that just started may
// have handshaken (for its own first packet) a moment before this host
// heard of it.
const freshFor = time.Second

// PeerAlive tells the device that the peer named name (Peer.Name) was
// just seen alive: it joined the cluster, or came back after it had
// failed or left. If this host initiates to that peer (the lower public
// key does, see initiates), a handshake starts at once (after
// sessionProbe when a session may still work), and again on a short
// backoff until one completes or the peer's traffic shows the session
// works.
//
// This is what stops a start from stalling: a host that sent an
// initiation while the peer's WireGuard port was not open yet (it was
// starting) would wait out WireGuard's 5 s REKEY_TIMEOUT before the next.
// The rate limit is lifted by expiring the peer's keypairs, which stops
// this host sending until a handshake completes. That is done only for a
// session that cannot be working: there is none, it is past
// RejectAfterTime, or, from the first retry on, nothing has come from the
// peer since PeerAlive while the handshake went unanswered (a peer that
// restarted lost its session). A working session is never expired, so a
// re-join that gossip reports of a live peer (memberlist on a loaded
// host declares a peer dead, then hears from it again) costs nothing:
// before, it expired the session, and if the handshake then failed, as
// every one does while the two hosts hold different preshared keys after
// a rotation (see ring.go), nothing went to the peer until one
// succeeded, REKEY_TIMEOUT apart. Only one side of each pair forces
// handshakes, so that two initiations never cross (both would fail).
//
// PeerAlive does not block; it is safe for concurrent use with every
// other method, and does nothing for an unknown name or after Close.
func (d *Device) PeerAlive(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
		return
	default:
	}
	self := d.cfg.PrivateKey.Public()
	for _, p := range d.cfg.Peers {
		if p.Name != name || name == "" || !initiates(self, p.PublicKey) || d.greeting[p.PublicKey] {
			continue
		}
		if d.greeting == nil {
			d.greeting = make(map[Key]bool)
		}
		d.greeting[p.PublicKey] = true
		d.routines.Add(1)
		g := greeting{key: p.PublicKey, since: time.Now().Add(-freshFor), received: d.received[p.PublicKey]}
		g.before = g.received.Load()
		d.cfg.Crash.Go("wireguard greet", func() { d.routineGreet(g) })
	}
}

// greeting is one run of routineGreet.
type greeting struct {
	key   Key       // the peer's public key
	since time.Time // a handshake completed after this is with the peer's new life
	// received counts the inner packets from the peer; before is its
	// value at PeerAlive.
	received *atomic.Uint64
	before   uint64
}

// routineGreet forces handshakes with the peer g.key, on greetBackoff,
// until one completes after g.since, the peer's packets show the session
// works, the peer is removed or the device closes.
func (d *Device) routineGreet(g greeting) {
	defer d.routines.Done()
	defer func() {
		d.mu.Lock()
		delete(d.greeting, g.key)
		d.mu.Unlock()
	}()
	// A session young enough to work gets sessionProbe to show it does,
	// by a packet from the peer, before any handshake is forced.
	s, ok := d.wgPeers()[g.key]
	young := ok && !s.LastHandshake.IsZero() && time.Since(s.LastHandshake) < device.RejectAfterTime
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, wait := range greetBackoff {
		if i == 0 && young {
			wait = sessionProbe
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-d.closed:
			return
		}
		s, ok := d.wgPeers()[g.key]
		if !ok || s.LastHandshake.After(g.since) {
			return
		}
		if g.received.Load() != g.before {
			d.l.Info("peer alive: its session works, kept", "peer", g.key.String())
			return
		}
		p := d.wg.LookupPeer(device.NoisePublicKey(g.key))
		if p == nil || !s.Endpoint.IsValid() {
			continue
		}
		if i > 0 || !young {
			d.l.Info("peer alive: session expired for a handshake at once", "peer", g.key.String(), "try", i)
			p.ExpireCurrentKeypairs()
		}
		if err := p.SendHandshakeInitiation(false); err != nil {
			d.l.Debug("handshake initiation failed", "error", err)
		}
	}
}
