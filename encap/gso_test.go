package encap

import "testing"

// TestFramesPerSend: the frames of one UDP GSO send are bounded by the
// IPv4 payload at large MTUs and by the kernel's segment limit at small
// ones, and the bound holds for every MTU.
func TestFramesPerSend(t *testing.T) {
	for _, tc := range []struct{ mtu, want int }{
		{1450, 44}, // the default network MTU under a 1500 underlay
		{1390, 46}, // an encrypted network's
		{1500, 43},
		{9000, 7},
		{68, maxGSOSegments},
		{0, maxGSOSegments},
	} {
		if got := FramesPerSend(tc.mtu); got != tc.want {
			t.Errorf("FramesPerSend(%d) = %d, want %d", tc.mtu, got, tc.want)
		}
	}
	for mtu := 68; mtu <= 65521; mtu++ {
		n := FramesPerSend(mtu)
		if n < 1 || n > maxGSOSegments || (n > 1 && n*(HeaderLen+ethHeaderLen+mtu) > maxUDPPayload4) {
			t.Fatalf("FramesPerSend(%d) = %d does not fit one send", mtu, n)
		}
	}
}
