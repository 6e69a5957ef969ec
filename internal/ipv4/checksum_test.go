package ipv4

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// refChecksum is RFC 1071 written the plain way, word by word.
func refChecksum(b []byte) uint16 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// refAdd adds two folded sums.
func refAdd(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s&0xffff + s>>16)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

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
		got := Checksum(b, initial)
		// 0x0000 and 0xffff are the same value in ones' complement.
		if got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
			t.Fatalf("len %d initial %#x: checksum = %#04x, reference %#04x", n, initial, got, want)
		}
		// Unaligned starts.
		if n > 3 {
			if got, want := Checksum(b[1:], 0), refChecksum(b[1:]); got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
				t.Fatalf("len %d offset 1: checksum = %#04x, reference %#04x", n, got, want)
			}
		}
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1398, 1500, 65536} {
		buf := pattern(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				Checksum(buf, 0)
			}
		})
	}
}

func BenchmarkChecksumReference(b *testing.B) {
	buf := pattern(1500)
	b.SetBytes(1500)
	for b.Loop() {
		refChecksum(buf)
	}
}

func TestUpdateChecksumAddrMatchesFull(t *testing.T) {
	b := []byte{0x45, 0x00, 0x12, 0x34, 10, 77, 0, 10, 0xab, 0xcd, 0xff, 0xff}
	c := ^Checksum(b, 0)
	for _, a := range [][4]byte{{10, 77, 0, 200}, {0, 0, 0, 0}, {255, 255, 255, 255}, {10, 77, 0, 11}, {192, 0, 2, 1}} {
		old := [4]byte(b[4:8])
		c = UpdateChecksumAddr(c, old, a)
		copy(b[4:8], a[:])
		if Checksum(b, c) != 0xffff {
			t.Fatalf("after %v: incremental checksum %#04x does not verify", a, c)
		}
	}
}

// TestChecksumLong crosses sumVector's chunk bound with all-ones data,
// the largest sums its lanes can see, at even and odd starts.
func TestChecksumLong(t *testing.T) {
	buf := make([]byte, 3<<20+77)
	for i := range buf {
		buf[i] = 0xff
	}
	buf[12345] = 0x12 // one word that is not all ones
	for _, off := range []int{0, 1, 2, 63} {
		b := buf[off:]
		// The reference, in even-length pieces that its 32-bit sum holds.
		var want uint16
		for rest := b; len(rest) > 0; {
			n := min(len(rest), 1<<14)
			want = refAdd(want, refChecksum(rest[:n]))
			rest = rest[n:]
		}
		if got := Checksum(b, 0); got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
			t.Fatalf("len %d offset %d: checksum = %#04x, reference %#04x", len(b), off, got, want)
		}
	}
}

// FuzzChecksum compares Checksum with the word-by-word reference for any
// bytes, start offset and initial sum.
func FuzzChecksum(f *testing.F) {
	f.Add(pattern(1500), uint16(0), uint8(0))
	f.Add(pattern(257), uint16(0xffff), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16, off uint8) {
		if int(off) > len(b) {
			return
		}
		b = b[off:]
		want := refAdd(refChecksum(b), initial)
		if got := Checksum(b, initial); got != want && !(got^want == 0xffff && (got == 0 || want == 0)) {
			t.Fatalf("len %d initial %#x: checksum = %#04x, reference %#04x", len(b), initial, got, want)
		}
	})
}
