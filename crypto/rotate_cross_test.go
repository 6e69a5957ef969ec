package crypto

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// initiationLog records when a Device's wireguard-go sent a handshake
// initiation, from its debug log.
type initiationLog struct {
	mu   sync.Mutex
	sent []time.Time
	line []byte
}

// Write takes the text handler's output, a line at a time.
func (l *initiationLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.line = append(l.line, b...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		if strings.Contains(string(l.line[:i]), "Sending handshake initiation") {
			l.sent = append(l.sent, time.Now())
		}
		l.line = l.line[i+1:]
	}
	return len(b), nil
}

// times returns the initiations sent so far.
func (l *initiationLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.sent...)
}

// TestRotationNoCrossedInitiations: two hosts whose clocks agree rotate
// their preshared keys with a period so short that the refresh before
// each boundary (a quarter period, 3 s) is less than WireGuard's
// REKEY_TIMEOUT (5 s) before the first handshake round after it (1 s
// after the boundary), which WireGuard therefore skips: the session
// under the new key comes from the next round, 6 s later, before the
// next refresh. Both hosts stream to each other every 10 ms through two
// switches; only the initiator of the pair may send handshake initiations
// (so that two can never cross), and neither direction may go quiet.
//
// Before this fix, the rounds after the first asked every peer without a
// handshake under the new key, on both sides. The two hosts' rounds fall
// on the same instants (both follow the boundaries), so both initiated
// and the initiations crossed in flight at every switch. wireguard-go
// answers both; when the answer to the peer's initiation lands between
// the check and the update of ConsumeMessageResponse, which it did on a
// loaded machine, the two hosts end up with the same keypair under
// different receiver indexes, and one drops every packet of the other
// without a log line or a counter until the next handshake: in the soak
// run, pings and the encrypted stream from h1 to h2 stopped for 10-26 s
// while h2 to h1 worked and both showed a recent handshake.
func TestRotationNoCrossedInitiations(t *testing.T) {
	if testing.Short() {
		t.Skip("streams through two key switches: about 35 s")
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	const every, maxGap = 12 * time.Second, 2500 * time.Millisecond
	a, b := newNode(t, 1), newNode(t, 2)
	if !initiates(a.key.Public(), b.key.Public()) {
		a.key, b.key = b.key, a.key // a is the initiator
	}
	ring := NewRing([]byte("crossed initiations test secret"), every)
	// The first boundary about 4 s from now: time to set up and
	// handshake in the epoch before.
	now := time.Now()
	offset := ring.Start(ring.EpochAt(now) + 2).Sub(now.Add(4 * time.Second))
	// b's clock runs skew ahead, so that its rounds come first: a
	// responder's initiation then never loses the race to the
	// initiator's, as it would on a quiet machine with equal clocks.
	const skew = 100 * time.Millisecond
	logs := map[*node]*initiationLog{a: {}, b: {}}
	for _, n := range []*node{a, b} {
		cfg := Config{
			PrivateKey: n.key, TunnelAddr: n.tunnel, ListenAddr: netip.MustParseAddr("127.0.0.1"),
			Secret: ring.secret, RotateEvery: every, clockOffset: offset,
		}
		if n == b {
			cfg.clockOffset += skew
		}
		d, err := New(cfg, slog.New(slog.NewTextHandler(logs[n], &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		n.attach(t, d)
	}
	connect(t, a, b)
	establish(t, a, b)

	flow := streamBoth(t, a, b)

	e0, _ := a.dev.Epoch()
	eventually(t, every+10*time.Second, "the first switch", func() bool {
		e, _ := a.dev.Epoch()
		return e != e0
	})
	start := time.Now()
	eventually(t, 2*every+10*time.Second, "two switches", func() bool {
		e, _ := a.dev.Epoch()
		return e == e0+2
	})
	// The rounds after the second switch, and their answers.
	time.Sleep(every - every/4 - 500*time.Millisecond)
	end := time.Now()
	flow.stop()

	for i, dir := range []string{"b→a", "a→b"} {
		gap, at := longestGap(flow.arrivals[i], start, end)
		t.Logf("%s: %d datagrams, longest gap %v at %v after the first switch", dir, len(flow.arrivals[i]),
			gap.Round(time.Millisecond), at.Sub(start).Round(time.Millisecond))
		if gap > maxGap {
			t.Errorf("%s: nothing arrived for %v", dir, gap.Round(time.Millisecond))
		}
	}
	// Only the initiator asks for handshakes, so none can cross.
	sa, sb := logs[a].times(), logs[b].times()
	t.Logf("initiations sent: a (initiator) %d, b %d", len(sa), len(sb))
	for _, y := range sb {
		t.Errorf("b, the responder, sent an initiation %v after the first switch",
			y.Sub(start).Round(time.Millisecond))
	}
	if len(sa) == 0 {
		t.Error("a, the initiator, sent no initiation")
	}
}
