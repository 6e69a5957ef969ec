//go:build amd64 && !purego

package ipv4

import (
	"math/bits"

	"golang.org/x/sys/cpu"
)

// vectorMin is the length from which sumVector uses AVX2: below it, the
// vector set-up and the final reduction cost more than they save.
const vectorMin = 256

// vectorChunk bounds one call of sumAVX2 so that none of its 32-bit lanes
// can overflow (see sum_amd64.s).
const vectorChunk = 1 << 20

var haveAVX2 = cpu.X86.HasAVX2

// sumVector adds the leading multiple of 64 bytes of b to acc with AVX2,
// when the CPU has it, and returns the bytes left. sumLE calls it only
// for at least vectorMin bytes. Every 64-byte block starts at an even
// offset of b, so the words keep their byte order.
func sumVector(b []byte, acc uint64) ([]byte, uint64) {
	if !haveAVX2 {
		return b, acc
	}
	for len(b) >= vectorMin {
		n := min(len(b), vectorChunk) &^ 63
		var c uint64
		acc, c = bits.Add64(acc, sumAVX2(b[:n]), 0)
		acc += c
		b = b[n:]
	}
	return b, acc
}

// sumAVX2 returns the sum, as integers, of the little-endian 16-bit words
// of b. len(b) must be a non-zero multiple of 64 and at most vectorChunk.
//
//go:noescape
func sumAVX2(b []byte) uint64
