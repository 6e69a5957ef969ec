package gossip

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
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
		Networks: []HostNetwork{
			{Host: "h1", Name: "blue", VNI: 256, Subnet: netip.MustParsePrefix("10.77.0.0/24")},
			{Host: "h1", Name: "none", VNI: 257},
		},
	}
	blue := netEntry{
		Def: config.Network{Name: "blue", VNI: 300, Subnet: netip.MustParsePrefix("10.80.0.0/24"), Gateway: netip.MustParseAddr("10.80.0.1"),
			MTU: 1450, Encrypted: true, Egress: true},
		Version: netVersion{Clock: 9, Origin: "h2"},
		Created: netVersion{Clock: 3, Origin: "h1"},
	}
	nets := []netEntry{
		blue,
		{Def: config.Network{Name: "v6", VNI: maxVNI, Subnet: netip.MustParsePrefix("fd00:80::/64")}, Version: netVersion{1, "h3"}, Created: netVersion{1, "h3"}},
		{Def: config.Network{Name: "gone"}, Version: netVersion{Clock: 1 << 63, Origin: "h1"}, Deleted: true},
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
		{Type: msgNets, Nets: nets},
		{Type: msgNets},
		{Type: msgSync, States: []hostState{st}, Nets: nets},
		{Type: msgSync},
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
		{"tombstone with flags", netMsg(flagDeleted | flagEgress)},
		{"unknown network flags", netMsg(8)},
		{"vni out of range", netMsg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x08, 0, 0, 0)},
		{"prefix too long", netMsg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 4, 10, 0, 0, 0, 33, 0, 0)},
		{"mtu out of range", netMsg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x80, 0x80, 0x04)},
		{"truncated network", netMsg(0, 0, 0, 0)},
		{"sync without networks", []byte{msgSync, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decode(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode = %v, want ErrMalformed", err)
			}
		})
	}
}

// netMsg builds a networks message of one entry named "n", clock 1 and
// origin "h", followed by the flags byte and rest.
func netMsg(flags byte, rest ...byte) []byte {
	b := []byte{msgNets, 1, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1, 1, 'h', flags}
	return append(b, rest...)
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
