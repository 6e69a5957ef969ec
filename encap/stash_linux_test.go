package encap

import (
	"net/netip"
	"testing"
)

// TestStashLendsWholeMessages: a batch takes stashed GRO messages whole
// while they fit and leaves the next one whole for the next batch, so that
// no batch ends inside a message; a message larger than the batch is
// split only when nothing else is in it, and then continues first in the
// next.
func TestStashLendsWholeMessages(t *testing.T) {
	src := netip.MustParseAddrPort("198.18.0.2:4789")
	msg := func(segs, seg int) []byte { return make([]byte, segs*seg) }
	var s rxStash
	s.push(msg(3, 100), 100, src)
	s.push(msg(3, 100), 100, src)
	s.push(msg(4, 100), 100, src)
	s.push(msg(9, 100), 100, src)
	views := make([][]byte, 8)
	eps := make([]netip.AddrPort, 8)
	for i, want := range []int{6, 4, 8, 1} { // 3+3 | 4 | 8 of 9 | 1
		if got := s.lend(views, eps, true); got != want {
			t.Fatalf("batch %d lent %d datagrams, want %d", i, got, want)
		}
	}
	if s.pending() {
		t.Fatal("stash not empty")
	}
	// Behind datagrams the caller already holds, a message that does not
	// fit is not started.
	s.push(msg(5, 100), 100, src)
	if got := s.lend(views[5:], eps[5:], false); got != 0 {
		t.Fatalf("lent %d datagrams of a message that does not fit", got)
	}
	if got := s.lend(views, eps, true); got != 5 {
		t.Fatalf("then lent %d, want the whole message of 5", got)
	}
}
