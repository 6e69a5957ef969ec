package ipv4

import (
	"encoding/binary"
	"math/bits"
)

// The Internet checksum (RFC 1071) is a ones'-complement sum of big-endian
// 16-bit words. Because that sum commutes with swapping the two bytes of
// every word (RFC 1071 §2(B)), the words can be loaded little-endian, eight
// bytes at a time, and summed with end-around carry in a 64-bit
// accumulator; 2^16-1 divides 2^64-1, so folding the 64-bit sum down to 16
// bits and swapping its bytes once gives the big-endian result.

// Checksum returns the ones'-complement sum of b added to initial, folded
// to 16 bits and not complemented. An odd trailing byte is padded with a
// zero, as RFC 1071 requires. initial and the result are big-endian sums.
func Checksum(b []byte, initial uint16) uint16 {
	acc := sumLE(b, uint64(bits.ReverseBytes16(initial)))
	return bits.ReverseBytes16(fold64(acc))
}

// sumLE adds the bytes of b, read as little-endian words, to acc with
// end-around carry.
func sumLE(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 64 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:40]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:48]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:56]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:64]), c)
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(b), c)
		b = b[8:]
	}
	acc, c = bits.Add64(acc, 0, c)
	acc += c
	var tail uint64
	if len(b) >= 4 {
		tail = uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		tail += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		tail += uint64(b[0])
	}
	acc, c = bits.Add64(acc, tail, 0)
	return acc + c
}

// fold64 folds a 64-bit ones'-complement sum to 16 bits.
func fold64(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}
