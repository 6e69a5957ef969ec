package crypto

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

var testSecret = []byte("a cluster secret of some length")

func TestRingEpochs(t *testing.T) {
	r := NewRing(testSecret, 12*time.Hour)
	cases := []struct {
		unix int64
		want int64
	}{
		{0, 0},
		{43199, 0},
		{43200, 1},
		{43201, 1},
		{1_700_000_000, 1_700_000_000 / 43200},
		{-1, -1}, // floor, not truncation
		{-43200, -1},
		{-43201, -2},
	}
	for _, c := range cases {
		if got := r.EpochAt(time.Unix(c.unix, 0)); got != c.want {
			t.Errorf("EpochAt(%d) = %d, want %d", c.unix, got, c.want)
		}
	}
	// Boundaries to the nanosecond.
	b := r.Start(39352)
	if r.EpochAt(b) != 39352 || r.EpochAt(b.Add(-time.Nanosecond)) != 39351 {
		t.Fatal("boundary")
	}
	if !r.Start(r.EpochAt(b.Add(time.Hour))).Equal(b) {
		t.Fatal("Start is not the beginning of the epoch")
	}
}

func TestRingSecondNewest(t *testing.T) {
	r := NewRing(testSecret, time.Hour)
	now := time.Unix(1_700_000_123, 0)
	ring := r.Epochs(now)
	e := r.EpochAt(now)
	if ring != [3]int64{e - 1, e, e + 1} {
		t.Fatalf("ring %v around %d", ring, e)
	}
	if r.Primary(now) != ring[1] {
		t.Fatal("primary is not the second newest")
	}
	// The three keys differ, and each epoch key is deterministic.
	k := [3]Key{r.EpochKey(ring[0]), r.EpochKey(ring[1]), r.EpochKey(ring[2])}
	if k[0] == k[1] || k[1] == k[2] || k[0] == k[2] {
		t.Fatal("ring keys repeat")
	}
	if NewRing(append([]byte(nil), testSecret...), time.Hour).EpochKey(e) != k[1] {
		t.Fatal("epoch key not deterministic")
	}
	// An hour later the newest key becomes the primary: the ring shifted.
	later := r.Epochs(now.Add(time.Hour))
	if later[1] != ring[2] || later[0] != ring[1] {
		t.Fatalf("ring %v an hour after %v", later, ring)
	}
}

func TestRingPairKeys(t *testing.T) {
	r := NewRing(testSecret, time.Hour)
	var pubs [4]Key
	for i := range pubs {
		k, _ := GenerateKey()
		pubs[i] = k.Public()
	}
	const e = 1000
	ab, ba := r.PeerPSK(e, pubs[0], pubs[1]), r.PeerPSK(e, pubs[1], pubs[0])
	if ab != ba || ab.IsZero() {
		t.Fatal("pair key not symmetric")
	}
	seen := map[Key]string{}
	for i := range pubs {
		for j := i + 1; j < len(pubs); j++ {
			for _, ep := range []int64{e, e + 1} {
				k := r.PeerPSK(ep, pubs[i], pubs[j])
				name := fmt.Sprintf("%d-%d@%d", i, j, ep)
				if other, dup := seen[k]; dup {
					t.Fatalf("%s and %s share a key", name, other)
				}
				seen[k] = name
			}
		}
	}
	if NewRing([]byte("another secret"), time.Hour).PeerPSK(e, pubs[0], pubs[1]) == ab {
		t.Fatal("different secrets give the same key")
	}
	// The pair key is HKDF over the epoch key with the sorted keys as info.
	lo, hi := pubs[0], pubs[1]
	if bytes.Compare(lo[:], hi[:]) > 0 {
		lo, hi = hi, lo
	}
	if derive(r.EpochKey(e).slice(), append(lo[:], hi[:]...)) != ab {
		t.Fatal("pair key derivation")
	}
	if r.EpochKey(e) != derive(testSecret, []byte("vxwire psk epoch 1000")) {
		t.Fatal("epoch key derivation")
	}
}

func (k Key) slice() []byte { return k[:] }

func TestRingDisabled(t *testing.T) {
	for _, r := range []Ring{{}, NewRing(testSecret, 0), NewRing(nil, time.Hour)} {
		if r.Enabled() {
			t.Fatal("enabled")
		}
		k, _ := GenerateKey()
		if !r.PeerPSK(5, k, k.Public()).IsZero() || !r.EpochKey(5).IsZero() || r.EpochAt(time.Now()) != 0 {
			t.Fatal("disabled ring derives keys")
		}
	}
}

// TestRingClockSkew shows what two hosts whose clocks differ by up to a
// minute use around a boundary: they agree except in the skew window right
// after it, in which each one's primary is still in the other's ring.
func TestRingClockSkew(t *testing.T) {
	r := NewRing(testSecret, 12*time.Hour)
	boundary := r.Start(40000)
	for _, skew := range []time.Duration{-60 * time.Second, -time.Second, 0, 30 * time.Second, 60 * time.Second} {
		disagree := time.Duration(0)
		for off := -3 * time.Minute; off <= 3*time.Minute; off += time.Second {
			real := boundary.Add(off)
			a, b := real, real.Add(skew) // b's clock is skew ahead of a's
			ea, eb := r.Primary(a), r.Primary(b)
			if ea != eb {
				disagree += time.Second
				// Inside the window: each primary is a member of the other's ring.
				if !inRing(r.Epochs(a), eb) || !inRing(r.Epochs(b), ea) {
					t.Fatalf("skew %v at %v: primaries %d/%d outside the rings", skew, off, ea, eb)
				}
			}
			// Outside the skew window they must agree.
			lo, hi := min(0, -skew), max(0, -skew)
			if (off < lo || off >= hi) && ea != eb {
				t.Fatalf("skew %v at %v: a uses %d, b uses %d", skew, off, ea, eb)
			}
			if off%(30*time.Second) == 0 && testing.Verbose() && (skew == 60*time.Second || skew == -60*time.Second) {
				t.Logf("skew %+v, boundary%+v: a uses epoch %d, b uses %d", skew, off, ea-40000, eb-40000)
			}
		}
		if abs := max(skew, -skew); disagree != abs {
			t.Fatalf("skew %v: disagreement lasted %v", skew, disagree)
		}
		// The pre-boundary refresh happens where both still agree.
		for _, host := range []time.Duration{0, skew} {
			refresh := boundary.Add(-r.lead()).Add(-host) // real time of that host's refresh
			if r.Primary(refresh) != r.Primary(refresh.Add(skew)) {
				t.Fatalf("skew %v: refresh at a disagreement", skew)
			}
		}
	}
}

func inRing(ring [3]int64, e int64) bool {
	return e == ring[0] || e == ring[1] || e == ring[2]
}

func TestRingLead(t *testing.T) {
	if NewRing(testSecret, 12*time.Hour).lead() != refreshLead {
		t.Fatal("lead for 12h")
	}
	if got := NewRing(testSecret, 2*time.Second).lead(); got != 500*time.Millisecond {
		t.Fatalf("lead for 2s: %v", got)
	}
}
