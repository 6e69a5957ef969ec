package overhead

import "testing"

func TestPathLimit(t *testing.T) {
	for _, tc := range []struct {
		path      int
		encrypted bool
		want      int
	}{
		{1500, false, 1450},
		{1300, false, 1250},
		{1500, true, 1390}, // 1440 is a multiple of 16: no padding
		{1300, true, 1182}, // 1240 pads to 1248: only 1232 fit
		{9000, true, 8878},
	} {
		got := PathLimit(tc.path, tc.encrypted)
		if got != tc.want {
			t.Errorf("PathLimit(%d, %v) = %d, want %d", tc.path, tc.encrypted, got, tc.want)
		}
		if tc.encrypted {
			// The padded WireGuard datagram of a packet of got bytes fits.
			inner := got + VXLAN
			padded := (inner + WireGuardPadding - 1) &^ (WireGuardPadding - 1)
			if padded+WireGuard > tc.path {
				t.Errorf("path %d: a %d-byte packet pads to %d bytes on the wire", tc.path, got, padded+WireGuard)
			}
		}
	}
}
