package tap

import "testing"

func TestPseudoSum(t *testing.T) {
	addrs := []byte{10, 99, 0, 1, 10, 99, 0, 2}
	want := refAdd(refAdd(refChecksum(addrs), protoTCP), 1480)
	if got := pseudoSum(addrs, protoTCP, 1480); got != want {
		t.Fatalf("pseudoSum = %#04x, want %#04x", got, want)
	}
}
