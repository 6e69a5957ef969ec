package crypto

// The preshared-key ring.
//
// WireGuard rotates its session keys every two minutes by itself. On top of
// that every pair of hosts mixes a preshared key (PSK) into its handshakes,
// derived from the cluster secret and rotated every rotate_every (12 h by
// default), so that a leaked PSK is useful for one epoch at most:
//
//	epoch(t)          = floor(unix(t) / rotate_every)
//	epochKey(N)       = HKDF-SHA256(secret, salt none, info "vxwire psk epoch N")
//	pairPSK(N, a, b)  = HKDF-SHA256(epochKey(N), salt none, info lo||hi)
//	                    where {lo, hi} = {a, b} sorted bytewise (public keys)
//
// Like Docker swarm, each host keeps a ring of three keys at local time t:
// {epoch(t)-1, epoch(t), epoch(t)+1}, oldest first, and the key in force is
// the second newest, epoch(t). As long as two clocks differ by less than
// rotate_every, the primary of each host is always a member of the other's
// ring: the host whose clock runs ahead uses the other's newest key, the one
// that runs behind uses the other's oldest. Both compute the same pair PSK
// because it depends only on the epoch and on the unordered pair of keys.
//
// WireGuard has one PSK per peer, and a handshake succeeds only when both
// ends hold the same one. Two hosts whose clocks differ by d therefore
// disagree on the PSK during the d seconds after each boundary (the
// "window"), and a handshake attempted in the window fails. Why no
// connection is ever lost for |d| ≤ 60 s (real times below; s_A and s_B are
// the moments A and B cross the boundary, |s_A-s_B| = d):
//
//  1. A failed handshake never touches the session in use. The initiator
//     cannot open the responder's answer and drops it; the responder only
//     stores a "next" keypair that is never confirmed. The current keypair
//     keeps carrying traffic both ways until RejectAfterTime (180 s) after
//     it was created.
//  2. refreshLead (90 s) before its own boundary the initiator of each
//     pair (see point 3) forces a handshake under the old PSK. Since
//     90 s > d, the other host is still in the same epoch then, so the
//     handshake succeeds, at s_I-90 ≥ s_min-90. When the window closes
//     and a retry 5 s later succeeds, that keypair is at most
//     d + 90 + 5 ≤ 155 s old, below RejectAfterTime (180 s). WireGuard's
//     own rekey of that keypair, 120 s after it, may fall in the window
//     and fail, which by point 1 is harmless. The
//     refresh needs rotate_every > refreshLead + d, i.e. more than 150 s;
//     for shorter periods the lead shrinks to a quarter of the period and
//     the argument holds only for correspondingly smaller skew.
//  3. At its boundary each host installs the new PSK for every peer; a
//     second later (settle) the host with the lower public key of each
//     pair initiates a handshake. Only one side initiates because two
//     initiations crossing in flight both fail in WireGuard. If the
//     initiator switched first, its attempt fails and WireGuard retries
//     every RekeyTimeout (5 s) for RekeyAttemptTime (90 s > 60 s), so a
//     retry succeeds within about 5 s of s_max; if the responder switched
//     first, the initiator's attempt at its own switch succeeds at once.
//     The new keypair then replaces the old one, which stays valid for
//     receiving until it expires, so packets in flight under it are still
//     accepted.
//  4. A handshake initiation is silently skipped by WireGuard when one was
//     sent less than RekeyTimeout ago (with a short period, the refresh
//     of point 2 may be that recent). routineRotate therefore rechecks
//     the peers every 6 s for two minutes after each switch, and the
//     initiator initiates again to a peer whose last handshake predates
//     the switch. The other side never does: the two sides' rounds fall
//     at the same moments, and two initiations crossing in flight can
//     leave one host dropping the new session's packets silently (see
//     rotateStep). If the initiator is down, so is the pair's traffic,
//     and PeerAlive starts a handshake when it returns.
//  5. Nothing else may stop the session in use either: PeerAlive, which
//     forces handshakes when gossip reports a peer (re-)joined, expires
//     the session only when it cannot be working (none, too old, or
//     nothing from the peer while the handshake went unanswered). Before,
//     a re-join reported in the window expired a working session, and
//     since every handshake then failed, nothing went to the peer until
//     the window closed and a retry came (TestRotationLatePeer).
//
// So the old session covers the whole window with at least 25 s to spare,
// and a new session under the new PSK follows within a retry interval.
// Hosts whose clocks differ by more than a minute still converge within
// RekeyTimeout after the window, but may see a short gap if the window
// outlasts the refreshed session.

import (
	"crypto/hkdf"
	"crypto/sha256"
	"strconv"
	"time"
)

const (
	// refreshLead is how long before each boundary a host forces one
	// handshake under the outgoing PSK (point 2 above).
	refreshLead = 90 * time.Second

	// confirmFor is how long after a boundary routineRotate keeps asking
	// peers without a handshake under the new PSK for one (point 4): the
	// tolerated skew plus the retry interval, with room to spare.
	confirmFor = 2 * time.Minute

	// epochInfo prefixes the decimal epoch number in the HKDF info of an
	// epoch key.
	epochInfo = "vxwire psk epoch "
)

// Ring derives the cluster's preshared keys. It is an immutable value once
// made by NewRing, safe to copy and to use from several goroutines. The
// zero Ring is disabled: it derives no keys.
type Ring struct {
	secret []byte
	every  time.Duration
}

// NewRing returns the ring for the cluster secret and rotation period. It
// copies secret. A period of 0 (or an empty secret) gives a disabled ring:
// no preshared keys.
func NewRing(secret []byte, every time.Duration) Ring {
	if every <= 0 || len(secret) == 0 {
		return Ring{}
	}
	return Ring{secret: append([]byte(nil), secret...), every: every}
}

// Enabled reports whether the ring derives preshared keys.
func (r Ring) Enabled() bool { return r.every > 0 }

// EpochAt returns floor(unix(t) / rotate_every), the epoch of the key in
// force at t. It returns 0 for a disabled ring.
func (r Ring) EpochAt(t time.Time) int64 {
	if !r.Enabled() {
		return 0
	}
	ns, per := t.UnixNano(), int64(r.every)
	e := ns / per
	if ns%per < 0 {
		e-- // floor, not truncation, before 1970
	}
	return e
}

// Start returns the moment epoch e begins.
func (r Ring) Start(e int64) time.Time {
	return time.Unix(0, e*int64(r.every))
}

// Epochs returns the ring at t, oldest first: {epoch(t)-1, epoch(t),
// epoch(t)+1}. The key in force is the second newest, Epochs(t)[1], which
// Primary returns.
func (r Ring) Epochs(t time.Time) [3]int64 {
	e := r.EpochAt(t)
	return [3]int64{e - 1, e, e + 1}
}

// Primary returns the epoch whose key is in force at t: the second newest
// of the ring, which is epoch(t).
func (r Ring) Primary(t time.Time) int64 { return r.Epochs(t)[1] }

// EpochKey returns the ring key of epoch e. It returns the zero Key for a
// disabled ring.
func (r Ring) EpochKey(e int64) Key {
	if !r.Enabled() {
		return Key{}
	}
	return derive(r.secret, []byte(epochInfo+strconv.FormatInt(e, 10)))
}

// PeerPSK returns the preshared key of the pair of hosts with public keys a
// and b in epoch e. It is symmetric: PeerPSK(e, a, b) == PeerPSK(e, b, a).
// It returns the zero Key (WireGuard's "no PSK") for a disabled ring.
func (r Ring) PeerPSK(e int64, a, b Key) Key {
	if !r.Enabled() {
		return Key{}
	}
	ek := r.EpochKey(e)
	return pairPSK(ek, a, b)
}

// pairPSK derives the pair key from an epoch key.
func pairPSK(epochKey, a, b Key) Key {
	lo, hi := a, b
	if string(hi[:]) < string(lo[:]) {
		lo, hi = hi, lo
	}
	var info [2 * KeyLen]byte
	copy(info[:], lo[:])
	copy(info[KeyLen:], hi[:])
	return derive(epochKey[:], info[:])
}

// derive is HKDF-SHA256 with no salt, producing one key.
func derive(secret, info []byte) Key {
	b, err := hkdf.Key(sha256.New, secret, nil, string(info), KeyLen)
	if err != nil {
		// Only possible for an output longer than 255 hash blocks, or an
		// empty secret in FIPS mode: a programming error here.
		panic("crypto: hkdf: " + err.Error())
	}
	return Key(b)
}

// settle is how long after its switch a host starts the handshakes under
// the new key: a second, so that a peer whose clock agrees to within that
// has switched too, or a quarter of a short period.
func (r Ring) settle() time.Duration {
	return min(time.Second, r.every/4)
}

// lead is the refresh lead for this ring: refreshLead, or a quarter of the
// period for periods too short to hold it.
func (r Ring) lead() time.Duration {
	return min(refreshLead, r.every/4)
}
