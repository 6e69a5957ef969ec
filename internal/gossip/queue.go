package gossip

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// sendQueue holds the messages waiting to be gossiped, at most one per
// host: a newer message about a host replaces the older one, and starts
// its sends again. Each message is handed to GetBroadcasts until it has
// gone out retransmitLimit times; those sent fewer times go first, and
// of those the newest.
//
// It replaces memberlist's TransmitLimitedQueue, which can lose a message
// (hashicorp/memberlist#263): it restarts its id counter whenever it runs
// empty, also between numbering a new message and inserting it after
// dropping the one it replaces, and two messages with the same id, size
// and send count then overwrite each other in its tree. A host's own
// update queued twice in quick succession was lost that way, and reached
// the others only by the next push-pull, 15 s or more later.
type sendQueue struct {
	// numNodes returns the number of live members, mult is memberlist's
	// RetransmitMult: together they bound the sends of one message.
	numNodes func() int
	mult     int

	mu    sync.Mutex
	items []*queued // unordered; at most one per host
	seq   uint64
}

// queued is one message of a sendQueue.
type queued struct {
	name string // the host the message is about
	msg  []byte
	sent int    // times handed out so far
	seq  uint64 // order of queueing: higher is newer
}

// queue adds msg, the message about host name, replacing any older one.
// The queue keeps msg: the caller must not change it afterwards.
func (q *sendQueue) queue(name string, msg []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	for _, it := range q.items {
		if it.name == name {
			it.msg, it.sent, it.seq = msg, 0, q.seq
			return
		}
	}
	q.items = append(q.items, &queued{name: name, msg: msg, seq: q.seq})
}

// get returns messages whose lengths, each with overhead added, fit in
// limit bytes together, and counts a send of each: those sent fewest
// times first, and of those the newest. A message sent retransmitLimit
// times leaves the queue.
func (q *sendQueue) get(overhead, limit int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil
	}
	slices.SortFunc(q.items, func(a, b *queued) int {
		if c := cmp.Compare(a.sent, b.sent); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	max := retransmitLimit(q.mult, q.numNodes())
	var out [][]byte
	used := 0
	for _, it := range q.items {
		if used+overhead+len(it.msg) > limit {
			continue // a smaller one further on may still fit
		}
		used += overhead + len(it.msg)
		out = append(out, it.msg)
		it.sent++
	}
	q.items = slices.DeleteFunc(q.items, func(it *queued) bool { return it.sent >= max })
	return out
}

// retransmitLimit is how many times a message is sent among n live
// members: mult times the number of decimal digits of n+1, as memberlist
// counts it, so that it reaches all of them with high probability.
func retransmitLimit(mult, n int) int {
	return max(mult*int(math.Ceil(math.Log10(float64(n+1)))), 1)
}
