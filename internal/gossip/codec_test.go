package gossip

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func sampleMessages() []*message {
	st := hostState{
		Host:    "h1",
		Version: version{Epoch: 1 << 60, Counter: 7},
		Records: []Record{
			{Network: "blue", Name: "web", Aliases: []string{"www", "w"}, IP: netip.MustParseAddr("10.77.0.10"), MAC: [6]byte{2, 0, 0, 0, 0, 1}, Host: "h1"},
			{Network: "blue", Name: "db6", IP: netip.MustParseAddr("fd00::5"), Host: "h1"},
		},
		Reservations: []reservation{{Network: "blue", IP: netip.MustParseAddr("10.77.0.11"), Endpoint: "api"}},
	}
	claim := claimMsg{ID: 42, From: "h2", Network: "blue", IP: netip.MustParseAddr("10.77.0.12"), Endpoint: "cache"}
	return []*message{
		{Type: msgState, State: st},
		{Type: msgState, State: hostState{Host: "empty"}},
		{Type: msgNotice, State: hostState{Host: "h1", Version: version{3, 4}}},
		{Type: msgPull, From: "h3"},
		{Type: msgStates, States: []hostState{st, {Host: "h2", Version: version{1, 1}}}},
		{Type: msgStates},
		{Type: msgClaim, Claim: claim},
		{Type: msgRelease, Claim: claim},
		{Type: msgAnswer, Answer: answerMsg{ID: 42, From: "h1", Granted: true}},
		{Type: msgAnswer, Answer: answerMsg{ID: 43, From: "h1", Pending: true, HolderHost: "h3", HolderEndpoint: "web"}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b := encode(nil, m)
		got, err := decode(b)
		if err != nil {
			t.Fatalf("decode(%d): %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("type %d: round trip\n got %+v\nwant %+v", m.Type, got, m)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := encode(nil, sampleMessages()[0])
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown type", []byte{99}},
		{"truncated state", valid[:len(valid)-3]},
		{"trailing bytes", append(append([]byte(nil), valid...), 0)},
		{"huge count", []byte{msgStates, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"long string", append([]byte{msgPull, 0x80, 0x02}, bytes.Repeat([]byte{'a'}, 256)...)},
		{"bad address length", []byte{msgClaim, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'h', 1, 'n', 5, 1, 2, 3, 4, 5, 1, 'e'}},
		{"bad flags", []byte{msgAnswer, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'h', 4, 0, 0}},
		{"bad varint", []byte{msgPull, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(encode(nil, m))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decode(b)
		if err != nil {
			return
		}
		b2 := encode(nil, m)
		m2, err := decode(b2)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed message\n got %+v\nwant %+v", m2, m)
		}
		if b3 := encode(nil, m2); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding is not a fixed point")
		}
	})
}

func TestVersionOrder(t *testing.T) {
	old := version{Epoch: 100, Counter: 9}
	restarted := version{Epoch: 200, Counter: 1}
	if restarted.compare(old) != 1 || old.compare(restarted) != -1 || old.compare(old) != 0 {
		t.Fatal("a restarted host must outrank its previous life")
	}
}

func TestTableDropKeepsVersion(t *testing.T) {
	tab := newTable("me")
	s := hostState{Host: "h2", Version: version{5, 1}, Records: []Record{{Network: "n", Name: "a", IP: netip.MustParseAddr("10.0.0.2"), Host: "h2"}}}
	tab.live["h2"] = true
	if taken, changed := tab.apply(s, timeNow()); !taken || !changed {
		t.Fatal("new state not taken")
	}
	delete(tab.live, "h2")
	if !tab.drop("h2") {
		t.Fatal("drop reported no change")
	}
	if taken, _ := tab.apply(s, timeNow()); taken {
		t.Fatal("stale copy of a dead host's state taken back")
	}
	tab.live["h2"] = true
	if taken, changed := tab.apply(s, timeNow()); !taken || !changed {
		t.Fatal("state of a host that refuted its death not taken back")
	}
	if len(tab.visible()) != 1 {
		t.Fatalf("visible = %v", tab.visible())
	}
}

func TestQuorum(t *testing.T) {
	tests := []struct {
		name   string
		live   []string
		failed []string
		want   bool
	}{
		{"alone", nil, nil, true},
		{"majority", []string{"b", "c"}, []string{"d"}, true},
		{"minority", nil, []string{"b", "c"}, false},
		{"half with smallest", []string{"d"}, []string{"b", "c"}, false},
		{"tie, smallest live", nil, []string{"z"}, true},
		{"tie, smallest failed", nil, []string{"a"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab := newTable("m")
			for _, h := range tc.live {
				tab.live[h] = true
			}
			for _, h := range tc.failed {
				tab.failed[h] = timeNow()
			}
			if got := tab.quorum(); got != tc.want {
				t.Fatalf("quorum = %v, want %v", got, tc.want)
			}
		})
	}
}
