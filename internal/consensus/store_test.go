package consensus

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
)

// TestStoreSurvivesTornTail: a record cut short by a crash is dropped on
// open, the entries before it are kept, and appends go on from there.
func TestStoreSurvivesTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 3; i++ {
		if err := s.StoreLog(&raft.Log{Index: i, Term: 1, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteRange(1, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(dir, logFile)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendRecord(nil, opStore, []byte(`{"Index":4,"Term":1}`))[:10])
	f.Close()

	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	if first != 2 || last != 3 {
		t.Fatalf("after the torn tail: first %d last %d, want 2 and 3", first, last)
	}
	if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 7 {
		t.Fatalf("term %d, %v", term, err)
	}
	if _, err := s.Get([]byte("LastVoteCand")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing key: %v", err)
	}
	if err := s.StoreLog(&raft.Log{Index: 4, Term: 2, Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := s.GetLog(4, &l); err != nil || l.Term != 2 {
		t.Fatalf("entry 4: %+v %v", l, err)
	}
	if err := s.GetLog(1, &l); err != raft.ErrLogNotFound {
		t.Fatalf("deleted entry 1: %v", err)
	}
}
