//go:build !amd64 || purego

package ipv4

import "math"

// vectorMin is the length from which sumLE calls sumVector.
const vectorMin = math.MaxInt

// sumVector leaves all of b to the scalar loop where no vector sum is
// written for the architecture.
func sumVector(b []byte, acc uint64) ([]byte, uint64) { return b, acc }
