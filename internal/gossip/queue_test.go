package gossip

import (
	"fmt"
	"slices"
	"testing"
)

// TestSendQueueKeepsEveryHost: a host's update queued twice in quick
// succession, then updates about other hosts of the same size, all go
// out. memberlist's TransmitLimitedQueue handed out 4 of these 5
// messages, without h1's own: its second update was overwritten by the
// update about h3, which drew the same id.
func TestSendQueueKeepsEveryHost(t *testing.T) {
	q := &sendQueue{numNodes: func() int { return 5 }, mult: 4}
	msg := func(host string, v int) []byte { return fmt.Appendf(nil, "%s-v%d", host, v) }
	q.queue("h1", msg("h1", 1))
	q.queue("h1", msg("h1", 2))
	for _, h := range []string{"h2", "h3", "h4", "h5"} {
		q.queue(h, msg(h, 1))
	}
	got := q.get(0, 1<<20)
	want := [][]byte{msg("h5", 1), msg("h4", 1), msg("h3", 1), msg("h2", 1), msg("h1", 2)}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("first round: %q, want %q", got, want)
	}
}

// TestSendQueueLimits: a message goes out retransmitLimit times, then
// leaves; what does not fit waits for the next call, fewest sends first;
// a replaced message starts its sends again.
func TestSendQueueLimits(t *testing.T) {
	q := &sendQueue{numNodes: func() int { return 9 }, mult: 2} // 2 × 1 digit
	q.queue("a", make([]byte, 100))
	q.queue("b", make([]byte, 100))
	if got := q.get(10, 150); len(got) != 1 || q.len() != 2 {
		t.Fatalf("one fits in 150 bytes with overhead 10: got %d, %d queued", len(got), q.len())
	}
	// b (newer) went first; now a has fewer sends and goes first.
	q.get(10, 150)
	q.get(10, 150) // b's second send: b leaves
	if q.len() != 1 {
		t.Fatalf("%d queued after b's second send, want 1", q.len())
	}
	q.queue("a", make([]byte, 50)) // replaced: starts again
	for i := range 2 {
		if got := q.get(0, 1000); len(got) != 1 || len(got[0]) != 50 {
			t.Fatalf("send %d of the replaced a: %d messages", i, len(got))
		}
	}
	if q.len() != 0 || q.get(0, 1000) != nil {
		t.Fatalf("queue not empty after a's two sends: %d", q.len())
	}
}

// len returns the number of messages waiting.
func (q *sendQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
