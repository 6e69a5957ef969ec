package tap

import (
	"net/netip"
	"strings"
	"testing"
)

// TestConfigGSOMaxSegs: the segment cap is refused, naming the field, out
// of 0..65535, and taken within it.
func TestConfigGSOMaxSegs(t *testing.T) {
	for _, tc := range []struct {
		segs int
		ok   bool
	}{{0, true}, {1, true}, {44, true}, {65535, true}, {-1, false}, {65536, false}} {
		cfg := Config{NetNS: "/proc/self/ns/net", Addr: netip.MustParsePrefix("10.99.0.2/24"), GSOMaxSegs: tc.segs}.withDefaults()
		err := cfg.validate()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "gso max segs")) {
			t.Errorf("GSOMaxSegs %d: %v", tc.segs, err)
		}
	}
}
