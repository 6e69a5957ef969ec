package encap

import "testing"

// TestSplitProbe: the largest datagram (the first of equals) stands alone
// between the others; a batch of one, or of small datagrams only, is not
// split.
func TestSplitProbe(t *testing.T) {
	mk := func(sizes ...int) [][]byte {
		var b [][]byte
		for _, n := range sizes {
			b = append(b, make([]byte, n))
		}
		return b
	}
	parts, ok := SplitProbe(mk(300, 1400, 1400, 200))
	if !ok || len(parts[0]) != 1 || len(parts[1]) != 1 || len(parts[1][0]) != 1400 || len(parts[2]) != 2 {
		t.Fatalf("split %v (ok %v), want [300] [1400] [1400 200]", parts, ok)
	}
	for _, b := range [][][]byte{mk(1400), mk(100, PathProbeMin-1), nil} {
		if _, ok := SplitProbe(b); ok {
			t.Errorf("batch of %d datagrams split", len(b))
		}
	}
}
