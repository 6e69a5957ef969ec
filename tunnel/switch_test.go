package tunnel

import "testing"

// TestSnapshotBuildHasNoSideEffects builds snapshots and checks that the
// forwarding table changes only when one is published: a record's pin
// travels in the snapshot, publish makes it an entry that learning from
// another peer cannot move, and publishing a snapshot without it removes
// it again.
func TestSnapshotBuildHasNoSideEffects(t *testing.T) {
	e, _ := hotPathEngine(t)
	f := e.networks["blue"].fdb
	rec := MAC{2, 0, 0, 0, 0, 0x44}
	owner, thief := e.peers["h2"], &peer{name: "h3"}

	e.mu.Lock()
	s := e.unlockedBuildSnapshot()
	e.mu.Unlock()
	s.byVNI[256].pins = map[MAC]*peer{rec: owner}
	before := f.len()
	if _, r := f.lookup(rec); r != nil || f.len() != before {
		t.Fatal("building a snapshot wrote the forwarding table")
	}
	e.sw.publish(s)
	if e.sw.snap.Load() != s {
		t.Fatal("publish did not store the snapshot")
	}
	if _, r := f.lookup(rec); r != owner {
		t.Fatalf("after publish %v lives behind %v, want h2", rec, r)
	}
	if got := f.learn(rec, nil, thief, 2); got != learnOwned {
		t.Fatalf("learning a pinned MAC from another peer = %d, want learnOwned", got)
	}

	e.mu.Lock()
	s = e.unlockedBuildSnapshot()
	e.mu.Unlock()
	if _, r := f.lookup(rec); r != owner {
		t.Fatal("building a snapshot without the record removed its pin")
	}
	e.sw.publish(s)
	if _, r := f.lookup(rec); r != nil {
		t.Fatalf("pin still in force after its record went: behind %v", r)
	}
}
