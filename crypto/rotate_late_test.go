package crypto

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestRotationLatePeer: one host of a pair switches preshared keys lag
// after the other (its clock reads lag behind), as a rotation timer that a
// loaded machine runs late would. Right after the early host's switch,
// while the two hold different keys, gossip reports the peer re-joined
// (PeerAlive), as memberlist does when, under load, it declared the peer
// dead and then heard from it again. Both hosts send to each other every
// 10 ms throughout, and neither direction may go quiet for maxGap; both
// late and early initiators (the side that forces handshakes) are tried.
//
// Before this fix, PeerAlive expired the working session, to lift
// WireGuard's rate limit on initiations, and every handshake then failed
// on the key mismatch until the late host had switched and a retry came,
// REKEY_TIMEOUT (5 s) apart: a 7-9 s outage of one direction, with no
// drop counted (wireguard-go held the packets, waiting for a key). That
// is the shape of the soak run's 15 s outage soon after a rotation. The
// rotation alone never stalled: a failed handshake leaves the session in
// use alone.
func TestRotationLatePeer(t *testing.T) {
	if testing.Short() {
		t.Skip("streams through a key switch: about 25 s")
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	for _, rejoin := range []bool{true, false} {
		for _, lateInitiator := range []bool{false, true} {
			t.Run(fmt.Sprintf("rejoin=%t/lateInitiator=%t", rejoin, lateInitiator), func(t *testing.T) {
				t.Parallel()
				testRotationLatePeer(t, lateInitiator, rejoin)
			})
		}
	}
}

// testRotationLatePeer runs one case of TestRotationLatePeer; rejoin says
// whether PeerAlive is called in the window.
func testRotationLatePeer(t *testing.T, lateInitiator, rejoin bool) {
	const every, lag, maxGap = 16 * time.Second, 6 * time.Second, 2500 * time.Millisecond
	a, b := newNode(t, 1), newNode(t, 2)
	if !initiates(a.key.Public(), b.key.Public()) {
		a.key, b.key = b.key, a.key // a is the initiator
	}
	early, late := a, b
	if lateInitiator {
		early, late = b, a
	}
	// The early host's clock reaches a boundary about 5 s from now, time
	// to set up and handshake while both hosts are in the same epoch.
	ring := NewRing([]byte("late peer test secret"), every)
	now := time.Now()
	offset := ring.Start(ring.EpochAt(now) + 2).Sub(now.Add(5 * time.Second))
	withClock := func(offset time.Duration) func(*Config) {
		return func(c *Config) {
			c.Secret, c.RotateEvery, c.clockOffset = ring.secret, every, offset
		}
	}
	early.start(t, withClock(offset))
	late.start(t, withClock(offset-lag))
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

	// Stream both ways, and note when each datagram arrived.
	flow := streamBoth(t, a, b)

	// Wait for the early host's switch; the late one holds the old key
	// for lag more.
	e0, _ := early.dev.Epoch()
	eventually(t, every+10*time.Second, "the early host's switch", func() bool {
		e, _ := early.dev.Epoch()
		return e != e0
	})
	switched := time.Now()
	if rejoin {
		// Every handshake in the window fails, so a's last one is older
		// than the second PeerAlive lets pass for a fresh one.
		time.Sleep(1500 * time.Millisecond)
		a.dev.PeerAlive("b")
	}
	if el, _ := late.dev.Epoch(); el != e0 {
		t.Fatalf("late host already in epoch %d", el)
	}
	// The window, then the late host's retry and one more REKEY_TIMEOUT.
	eventually(t, every, "the late host's switch", func() bool {
		e, _ := late.dev.Epoch()
		return e != e0
	})
	time.Sleep(time.Until(switched.Add(2*lag + 500*time.Millisecond)))
	flow.stop()

	for i, dir := range []string{"b→a", "a→b"} {
		gap, at := longestGap(flow.arrivals[i], switched.Add(-time.Second), switched.Add(2*lag))
		t.Logf("%s: %d datagrams, longest gap %v at %v after the early switch", dir, len(flow.arrivals[i]),
			gap.Round(time.Millisecond), at.Sub(switched).Round(time.Millisecond))
		if gap > maxGap {
			t.Errorf("%s: nothing arrived for %v", dir, gap.Round(time.Millisecond))
		}
	}
	// A session under the new key followed.
	eventually(t, 15*time.Second, "a handshake under the new key", func() bool {
		st := a.dev.Status()
		return len(st) == 1 && st[0].LastHandshake.After(switched.Add(lag))
	})
	eventually(t, 5*time.Second, "a datagram after the rotation", func() bool {
		sendBatch(t, a, b.id, probeSeq, 1, probeSize)
		for _, g := range b.collect(1<<15, 100*time.Millisecond) {
			if isProbe(g.data) {
				return true
			}
		}
		return false
	})
}

// twoWay is a datagram sent from each of two nodes to the other every
// 10 ms, with the time each arrived: arrivals[0] at a, arrivals[1] at b,
// complete once stop has returned.
type twoWay struct {
	once     sync.Once
	quit     chan struct{}
	wg       sync.WaitGroup
	arrivals [2][]time.Time
}

// streamBoth starts a twoWay stream between a and b; it stops at the
// end of the test at the latest.
func streamBoth(t *testing.T, a, b *node) *twoWay {
	s := &twoWay{quit: make(chan struct{})}
	for i, pair := range [][2]*node{{b, a}, {a, b}} {
		from, to := pair[0], pair[1]
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for seq := uint32(0); ; seq++ {
				select {
				case <-s.quit:
					return
				case <-tick.C:
				}
				_ = from.dev.Write([][]byte{vxlanDatagram(200, seq)}, to.id)
			}
		}()
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.quit:
					return
				case <-to.rx:
					s.arrivals[i] = append(s.arrivals[i], time.Now())
				}
			}
		}()
	}
	t.Cleanup(s.stop)
	return s
}

// stop ends the stream and waits for its goroutines.
func (s *twoWay) stop() {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
}

// longestGap returns the longest time between arrivals (sorted) inside
// [from, to], counting from from and up to to, and where it started.
func longestGap(arrivals []time.Time, from, to time.Time) (time.Duration, time.Time) {
	var gap time.Duration
	at, prev := from, from
	for _, t := range append(arrivals, to) {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			t = to
		}
		if d := t.Sub(prev); d > gap {
			gap, at = d, prev
		}
		prev = t
		if !t.Before(to) {
			break
		}
	}
	return gap, at
}
