package crypto

import (
	"time"

	"golang.zx2c4.com/wireguard/device"
)

// greetBackoff are the waits before each handshake PeerAlive forces: the
// first at once, the others longer each time so that a round trip slower
// than the previous wait can still complete. After the last, WireGuard's
// own timers carry on.
var greetBackoff = []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

// freshFor is how old a completed handshake may be at PeerAlive and still
// count as one with the peer's new life: a peer that just started may
// have handshaken (for its own first packet) a moment before this host
// heard of it.
const freshFor = time.Second

// PeerAlive tells the device that the peer named name (Peer.Name) was
// just seen alive: it joined the cluster, or came back after it had
// failed or left. If this host initiates to that peer (the lower public
// key does, see initiates), a handshake starts at once, and again on a
// short backoff until one completes.
//
// This is what stops a start from stalling: a host that sent an
// initiation while the peer's WireGuard port was not open yet (it was
// starting) would wait out WireGuard's 5 s REKEY_TIMEOUT before the next.
// The rate limit is lifted by expiring the peer's keypairs: a session the
// peer lost when it restarted is useless anyway, and a live one costs one
// round trip. Only one side of each pair forces handshakes, so that two
// initiations never cross (both would fail).
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
		since := time.Now().Add(-freshFor)
		d.cfg.Crash.Go("wireguard greet", func() { d.routineGreet(p.PublicKey, since) })
	}
}

// routineGreet forces handshakes with the peer with key k, on
// greetBackoff, until one completes after since, the peer is removed or
// the device closes.
func (d *Device) routineGreet(k Key, since time.Time) {
	defer d.routines.Done()
	defer func() {
		d.mu.Lock()
		delete(d.greeting, k)
		d.mu.Unlock()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for _, wait := range greetBackoff {
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-d.closed:
			return
		}
		s, ok := d.wgPeers()[k]
		if !ok || s.LastHandshake.After(since) {
			return
		}
		p := d.wg.LookupPeer(device.NoisePublicKey(k))
		if p == nil || !s.Endpoint.IsValid() {
			continue
		}
		p.ExpireCurrentKeypairs()
		if err := p.SendHandshakeInitiation(false); err != nil {
			d.l.Debug("handshake initiation failed", "error", err)
		}
	}
}
