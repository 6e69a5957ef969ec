package crypto

import (
	"bytes"
	"math"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/device"
)

// confirmEvery is how often, during confirmFor after a switch, peers
// without a handshake under the new key are asked again: just over
// WireGuard's RekeyTimeout, so that its rate limit lets the new
// initiation through.
const confirmEvery = device.RekeyTimeout + time.Second

// routineRotate installs each epoch's preshared keys at its boundary and
// drives the handshakes described at the top of ring.go. It runs from New
// to Close and sleeps on a timer between events; a Reconfigure wakes it
// through d.kick so that a changed period takes effect at once.
func (d *Device) routineRotate() {
	defer d.routines.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	r := rotation{refreshed: math.MinInt64}
	for {
		wait := d.rotateStep(&r, d.now())
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-d.kick:
		case <-d.closed:
			return
		}
	}
}

// rotation is routineRotate's memory between wake-ups.
type rotation struct {
	refreshed   int64     // epoch whose pre-boundary refresh is done
	switchedAt  time.Time // when the installed keys were switched to
	nextConfirm time.Time // next confirmation round while confirming
}

// rotateStep does what is due at now and returns how long to sleep.
//
// After a switch, rounds confirmEvery apart, the first settle later (so
// that a peer whose clock agrees has switched too), ask the peers this
// host is the initiator for and that have no handshake under the new key
// yet. Only the initiator of each pair ever asks: the two hosts' rounds
// fall at the same moments (both follow the epoch boundaries), so if the
// other side asked too, their initiations would cross in flight. Crossed
// initiations are worse than a failed handshake: wireguard-go can answer
// both and end with the two hosts holding one keypair under different
// receiver indexes (ConsumeMessageResponse checks the handshake state
// under a read lock and writes the result under a new lock, and the
// peer's initiation, answered between the two, moves the local index);
// the host that lost its index then drops every packet of the new
// session without a trace, until the next handshake, while the other
// direction works (TestRotationNoCrossedInitiations).
func (d *Device) rotateStep(r *rotation, now time.Time) time.Duration {
	d.mu.Lock()
	ring, self := d.ring, d.cfg.PrivateKey.Public()
	d.mu.Unlock()
	if !ring.Enabled() {
		return time.Hour // until a Reconfigure kicks
	}
	if d.install(now) {
		r.switchedAt = now
		r.nextConfirm = now.Add(ring.settle())
	}
	confirming := !r.switchedAt.IsZero() && now.Sub(r.switchedAt) < confirmFor
	if confirming && !now.Before(r.nextConfirm) {
		d.handshake(self, r.switchedAt)
		r.nextConfirm = now.Add(confirmEvery)
	}
	e := ring.EpochAt(now)
	next := ring.Start(e + 1)
	refreshAt := next.Add(-ring.lead())
	if r.refreshed != e+1 && !now.Before(refreshAt) {
		d.handshake(self, time.Time{})
		r.refreshed = e + 1
	}
	wake := next
	if r.refreshed != e+1 && refreshAt.Before(wake) {
		wake = refreshAt
	}
	if confirming && r.nextConfirm.Before(wake) {
		wake = r.nextConfirm
	}
	return max(wake.Sub(now), time.Millisecond)
}

// install switches every peer to the preshared key of the epoch at now,
// and reports whether the epoch changed.
func (d *Device) install(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.closed:
		return false
	default:
	}
	e := d.ring.EpochAt(now)
	if !d.ring.Enabled() || e == d.epoch {
		return false
	}
	self := d.cfg.PrivateKey.Public()
	var b strings.Builder
	for _, p := range d.cfg.Peers {
		b.WriteString("public_key=" + p.PublicKey.hex() + "\n")
		b.WriteString("preshared_key=" + d.ring.PeerPSK(e, self, p.PublicKey).hex() + "\n")
	}
	if err := d.wg.IpcSet(b.String()); err != nil {
		// Only a malformed line fails here, which would be a bug; keep the
		// old keys, so the state stays consistent, and retry next time.
		d.l.Error("cannot install preshared keys", "error", err, "epoch", e)
		return false
	}
	d.l.Info("preshared keys rotated", "epoch", e, "peers", len(d.cfg.Peers))
	d.epoch = e
	return true
}

// handshake asks the peers this host (public key self) initiates to (see
// initiates), with a known endpoint, for a new handshake under the
// preshared key now installed: those whose last handshake completed
// before the given time, or all when it is zero. The other side of a pair
// never asks, so initiations cannot cross (see rotateStep). The current
// session keeps carrying traffic until the handshake completes. WireGuard
// skips the request for a peer that was sent an initiation less than
// RekeyTimeout ago; the later confirmation rounds catch those.
func (d *Device) handshake(self Key, before time.Time) {
	for k, s := range d.wgPeers() {
		if !s.Endpoint.IsValid() || !initiates(self, k) {
			continue
		}
		if !before.IsZero() && !s.LastHandshake.Before(before) {
			continue
		}
		if p := d.wg.LookupPeer(device.NoisePublicKey(k)); p != nil {
			p.SendHandshakeInitiation(false)
		}
	}
}

// initiates reports whether the host with public key self starts the
// rotation handshakes with the host with key peer: the lower key does.
// Two initiations that cross in flight can leave one host dropping the new
// session's packets (see rotateStep), so only one side of each pair
// initiates.
func initiates(self, peer Key) bool {
	return bytes.Compare(self[:], peer[:]) < 0
}
