package ipam

import (
	"maps"
	"net/netip"
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
