package tap

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 70000)
	for i := range 2000 {
		n := rng.IntN(len(buf))
		if i < 200 {
			n = i // every short length, odd and even
		}
		b := buf[:n]
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%5 == 0 {
			for j := range b { // all-ones data stresses the carries
				b[j] = 0xff
			}
		}
		initial := uint16(rng.Uint32())
		want := refAdd(refChecksum(b), initial)
		got := checksum(b, initial)
		// 0x0000 and 0xffff are the same value in ones' complement.
		if got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
			t.Fatalf("len %d initial %#x: checksum = %#04x, reference %#04x", n, initial, got, want)
		}
		// Unaligned starts.
		if n > 3 {
			if got, want := checksum(b[1:], 0), refChecksum(b[1:]); got != want && got^want != 0xffff {
				t.Fatalf("len %d offset 1: checksum = %#04x, reference %#04x", n, got, want)
			}
		}
	}
}

func TestPseudoSum(t *testing.T) {
	addrs := []byte{10, 99, 0, 1, 10, 99, 0, 2}
	want := refAdd(refAdd(refChecksum(addrs), protoTCP), 1480)
	if got := pseudoSum(addrs, protoTCP, 1480); got != want {
		t.Fatalf("pseudoSum = %#04x, want %#04x", got, want)
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1500, 65536} {
		buf := pattern(n, 3)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				checksum(buf, 0)
			}
		})
	}
}

func BenchmarkChecksumReference(b *testing.B) {
	buf := pattern(1500, 3)
	b.SetBytes(1500)
	for b.Loop() {
		refChecksum(buf)
	}
}
