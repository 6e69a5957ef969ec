package crypto

import (
	"encoding/binary"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap"
)

// TestRotationUnderTraffic rotates the preshared keys every 2 s while both
// hosts send continuously, and measures what is lost around the handshakes.
func TestRotationUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s")
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	const every = 2 * time.Second
	secret := func(c *Config) { c.Secret, c.RotateEvery = []byte("rotation test secret"), every }
	a, b := newNode(t, 1), newNode(t, 2)
	a.start(t, secret)
	b.start(t, secret)
	connect(t, a, b)
	establish(t, a, b)
	startEpoch, _ := a.dev.Epoch()
	hs0 := a.dev.Status()[0].LastHandshake

	countA, countB := a.countRx(), b.countRx()
	const batch, period = 8, 2 * time.Millisecond
	deadline := time.Now().Add(4*every + every/2)
	sent := 0
	var epochs []int64
	handshakes := map[time.Time]bool{}
	for time.Now().Before(deadline) {
		sendBatch(t, a, b.id, sent, batch, 500)
		sendBatch(t, b, a.id, sent, batch, 500)
		sent += batch
		if e, _ := a.dev.Epoch(); len(epochs) == 0 || epochs[len(epochs)-1] != e {
			epochs = append(epochs, e)
		}
		if sent%400 == 0 {
			handshakes[a.dev.Status()[0].LastHandshake] = true
		}
		time.Sleep(period)
	}
	gotB, gotA := countB(sent), countA(sent)
	endEpoch, _ := a.dev.Epoch()
	t.Logf("epochs %v (%d switches), %d distinct handshake times seen at a", epochs, endEpoch-startEpoch, len(handshakes))
	t.Logf("a→b: %d sent, %d lost; b→a: %d sent, %d lost", sent, sent-gotB, sent, sent-gotA)
	if endEpoch-startEpoch < 3 {
		t.Fatalf("only %d epochs passed", endEpoch-startEpoch)
	}
	if !a.dev.Status()[0].LastHandshake.After(hs0) {
		t.Fatal("no handshake under a new key")
	}
	if loss := (sent - gotB) + (sent - gotA); loss > 20 {
		t.Fatalf("lost %d datagrams during rotation", loss)
	}
	// The session carries on after the last switch.
	sendBatch(t, a, b.id, 1<<29, 10, 100)
	if n := b.receive(t, a.id, 1<<29, 10, 100, 5*time.Second); n != 10 {
		t.Fatalf("after rotation: %d/10", n)
	}
	// Both ends are in the same epoch and the peer status shows it.
	eb, _ := b.dev.Epoch()
	if st := b.dev.Status()[0]; !st.PSK || st.PSKEpoch != eb {
		t.Fatalf("status %+v, epoch %d", st, eb)
	}
}

// countRx consumes n.rx in the background, and returns a function that
// waits until want distinct sequence numbers below want arrived (or the
// flow has been quiet for a second), stops consuming and returns how many
// did.
func (n *node) countRx() func(want int) int {
	seen := make(map[uint32]bool)
	stop := make(chan int)
	result := make(chan int)
	go func() {
		want := -1
		for {
			var quiet <-chan time.Time
			if want >= 0 {
				if len(seen) >= want {
					result <- len(seen)
					return
				}
				quiet = time.After(time.Second)
			}
			select {
			case g := <-n.rx:
				s := binary.BigEndian.Uint32(g.data[encap.HeaderLen:])
				if s < 1<<29 {
					seen[s] = true
				}
			case want = <-stop:
			case <-quiet:
				result <- len(seen)
				return
			}
		}
	}()
	return func(want int) int {
		stop <- want
		return <-result
	}
}
