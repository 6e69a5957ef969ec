//go:build amd64 && !purego

#include "textflag.h"

// func sumAVX2(b []byte) uint64
//
// Each 32-byte load is split into the low and the high 16-bit word of
// every 32-bit lane (mask and shift), and both are added into 32-bit
// lanes of four accumulators. A lane gains at most 0xffff per 64 bytes,
// so with at most 1<<20 bytes (16384 rounds) it stays below 2^30, and
// the four accumulators together below 2^32. The eight lanes are then
// widened to 64 bits and added up.
TEXT ·sumAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	VPCMPEQD Y15, Y15, Y15
	VPSRLD $16, Y15, Y15
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

loop:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VPAND Y15, Y4, Y6
	VPSRLD $16, Y4, Y4
	VPAND Y15, Y5, Y7
	VPSRLD $16, Y5, Y5
	VPADDD Y6, Y0, Y0
	VPADDD Y4, Y1, Y1
	VPADDD Y7, Y2, Y2
	VPADDD Y5, Y3, Y3
	ADDQ $64, SI
	SUBQ $64, CX
	JNZ loop

	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMOVZXDQ X0, Y2
	VPMOVZXDQ X1, Y3
	VPADDQ Y3, Y2, Y2
	VEXTRACTI128 $1, Y2, X3
	VPADDQ X3, X2, X2
	VPSHUFD $0x4e, X2, X3
	VPADDQ X3, X2, X2
	VMOVQ X2, AX
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
