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
// end-around carry. Where the CPU has wide vectors, sumVector takes the
// bulk of a long b first, and the loops below sum what is left.
func sumLE(b []byte, acc uint64) uint64 {
	if len(b) >= vectorMin {
		b, acc = sumVector(b, acc)
	}
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
	acc, c = bits.Add64(acc, 0, c)
	acc += c
	// Under 64 bytes are left. Their 32-bit halves are added without
	// carries (2^32 ≡ 1 modulo 2^16-1): at most 16 of them cannot overflow
	// tail, and no add waits for the previous one's carry.
	var tail uint64
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		tail += x&0xffffffff + x>>32
		b = b[8:]
	}
	if len(b) >= 4 {
		tail += uint64(binary.LittleEndian.Uint32(b))
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

// UpdateChecksum returns checksum c (as stored: complemented) after one
// 16-bit word of the data it covers changed from old to new, following
// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m').
func UpdateChecksum(c, old, new uint16) uint16 {
	return ^fold32(uint32(^c) + uint32(^old) + uint32(new))
}

// UpdateChecksumAddr is UpdateChecksum for a 32-bit field, such as an IPv4
// address in the header or in a TCP/UDP pseudo-header, that changed from
// old to new: the two words are updated at once.
func UpdateChecksumAddr(c uint16, old, new [4]byte) uint16 {
	sum := uint32(^c)
	sum += uint32(^binary.BigEndian.Uint16(old[0:])) + uint32(^binary.BigEndian.Uint16(old[2:]))
	sum += uint32(binary.BigEndian.Uint16(new[0:])) + uint32(binary.BigEndian.Uint16(new[2:]))
	return ^fold32(sum)
}

// fold32 folds a sum of at most a few 16-bit words to 16 bits with
// end-around carry: two folds bring any sum below 2^20 down to 16 bits.
func fold32(sum uint32) uint16 {
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}
