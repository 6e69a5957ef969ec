package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseState(f *testing.F) {
	f.Add(encodeState(map[Key]netip.Addr{
		{"blue", "web"}: netip.MustParseAddr("10.77.0.2"),
		{"blue", "db"}:  netip.MustParseAddr("fd00::2"),
	}))
	f.Add([]byte(`{"version":1,"allocations":[]}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseState(b)
		if err != nil {
			return
		}
		enc := encodeState(m)
		m2, err := parseState(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if !maps.Equal(m, m2) {
			t.Fatalf("round trip changed %v to %v", m, m2)
		}
		if string(encodeState(m2)) != string(enc) {
			t.Fatal("encoding is not a fixed point")
		}
	})
}

// TestFileStoreJournal checks that the journal is folded into the file
// once it outgrows the allocations and at close, and that every change
// survives a reopen. (TestFileStoreCrash opens journals a crash left.)
func TestFileStoreJournal(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Key]netip.Addr{}
	ip := netip.MustParseAddr("10.77.0.2")
	for i := range minCompact + 40 {
		k := Key{"blue", fmt.Sprintf("c%d", i%50)}
		if i%3 == 2 {
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
			continue
		}
		ip = ip.Next()
		if err := s.Save(k, ip); err != nil {
			t.Fatal(err)
		}
		want[k] = ip
	}
	if s.lines == 0 || s.lines > minCompact {
		t.Fatalf("journal holds %d changes: want some, and at most %d", s.lines, minCompact)
	}
	s.Close()
	if fi, err := os.Stat(filepath.Join(dir, journalFile)); err != nil || fi.Size() != 0 {
		t.Fatalf("journal not folded at close: %v, %v", fi, err)
	}
	// The file alone holds the state after a close.
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := parseState(b); err != nil || !maps.Equal(got, want) {
		t.Fatalf("ipam.json after close holds %v, %v; want %v", got, err, want)
	}
	s, err = NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, _ := s.Load()
	if !maps.Equal(got, want) {
		t.Fatalf("reopened store holds %v, want %v", got, want)
	}
}

// TestFileStoreCrash opens stores as a crash would leave them: a change
// cut short, and a journal already folded into the file.
func TestFileStoreCrash(t *testing.T) {
	base := `{"version":1,"allocations":[{"network":"n","endpoint":"a","address":"10.0.0.2"}]}`
	a3 := `{"network":"n","endpoint":"b","address":"10.0.0.3"}` + "\n"
	for name, tc := range map[string]struct {
		journal string
		want    map[Key]netip.Addr
		bad     bool
	}{
		"torn last change": {journal: a3 + `{"network":"n","endpoint":"c","addr`, want: map[Key]netip.Addr{
			{"n", "a"}: netip.MustParseAddr("10.0.0.2"), {"n", "b"}: netip.MustParseAddr("10.0.0.3")}},
		"replayed over its fold": {journal: `{"network":"n","endpoint":"a","address":""}` + "\n" + `{"network":"n","endpoint":"a","address":"10.0.0.2"}` + "\n",
			want: map[Key]netip.Addr{{"n", "a"}: netip.MustParseAddr("10.0.0.2")}},
		"delete":            {journal: `{"network":"n","endpoint":"a","address":""}` + "\n", want: map[Key]netip.Addr{}},
		"garbage line":      {journal: "{not json\n" + a3, bad: true},
		"duplicate address": {journal: `{"network":"n","endpoint":"b","address":"10.0.0.2"}` + "\n", bad: true},
		"unknown field":     {journal: `{"network":"n","endpoint":"b","address":"10.0.0.4","x":1}` + "\n", bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, stateFile), []byte(base), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, journalFile), []byte(tc.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := NewFileStore(dir)
			if tc.bad {
				if err == nil {
					s.Close()
					t.Fatal("malformed journal accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got, _ := s.Load(); !maps.Equal(got, tc.want) {
				t.Fatalf("store holds %v, want %v", got, tc.want)
			}
			// A change after the recovery is kept too.
			if err := s.Save(Key{"n", "z"}, netip.MustParseAddr("10.0.0.9")); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s2, err := NewFileStore(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if got, _ := s2.Load(); got[Key{"n", "z"}] != netip.MustParseAddr("10.0.0.9") || len(got) != len(tc.want)+1 {
				t.Fatalf("after a change and a reopen the store holds %v", got)
			}
		})
	}
}

func FuzzReplayJournal(f *testing.F) {
	f.Add([]byte(`{"network":"n","endpoint":"b","address":"10.0.0.3"}` + "\n" + `{"network":"n","endpoint":"b","address":""}` + "\n"))
	f.Add([]byte(`{"network":"n","endpoint":"b","addr`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := map[Key]netip.Addr{}
		if replayJournal(m, b) != nil {
			return
		}
		// Whatever a journal replays to, the file form holds as is.
		m2, err := parseState(encodeState(m))
		if err != nil {
			t.Fatalf("replayed state %v does not re-parse: %v", m, err)
		}
		if !maps.Equal(m, m2) {
			t.Fatalf("round trip changed %v to %v", m, m2)
		}
	})
}
