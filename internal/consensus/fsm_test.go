package consensus

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/hashicorp/raft"
)

// TestTakeRetryIsIdempotent: a Take applied twice with the same ID (a
// retry after a lost answer) yields one block, not two.
func TestTakeRetryIsIdempotent(t *testing.T) {
	f := &fsm{pins: make(map[pinKey]Pin)}
	apply := func(i uint64, c command) result {
		b, _ := json.Marshal(c)
		return f.Apply(&raft.Log{Index: i, Type: raft.LogCommand, Data: b}).(result)
	}
	c := command{Op: opTake, Network: "blue", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Bits: 28, Host: "h1", ID: 7}
	r1, r2 := apply(1, c), apply(2, c)
	if r1.Err != "" || r1.Block != r2.Block {
		t.Fatalf("take and its retry: %+v, %+v", r1, r2)
	}
	c.ID = 9
	if r3 := apply(3, c); r3.Block == r1.Block {
		t.Fatalf("a new take got the same block %s", r3.Block)
	}
	// Entries at or below the applied index are skipped (a replay after
	// a restart).
	c.ID = 11
	if r := apply(3, c); r.Err == "" {
		t.Fatalf("entry 3 applied twice: %+v", r)
	}
}

// TestApplyRefusesMalformed: garbage in the log is refused, not applied.
func TestApplyRefusesMalformed(t *testing.T) {
	f := &fsm{pins: make(map[pinKey]Pin)}
	for i, data := range []string{`{`, `{"op":"take","network":"blue","host":"h1","subnet":"10.0.0.0/24","bits":40}`, `{"op":"drop"}`} {
		r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: []byte(data)}).(result)
		if r.Err == "" {
			t.Errorf("%s applied", data)
		}
	}
	if len(f.blocks) != 0 {
		t.Fatalf("blocks after garbage: %v", f.blocks)
	}
}
