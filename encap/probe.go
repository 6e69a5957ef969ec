package encap

// PathProbeMin is the smallest UDP payload worth sending alone as a path
// MTU probe: every IPv4 path carries 576-byte datagrams.
const PathProbeMin = 576 - 28

// SplitProbe splits a batch of datagrams to one destination around its
// largest one, for a sender that sends the three parts in turn so that
// the largest leaves alone. The kernel sets DF on a UDP datagram only
// when the length it is given fits the path MTU it knows, which for a
// GSO send is the whole batch: without a lone full-size datagram now and
// then, a router with a smaller link fragments everything silently and
// the path is never learnt. ok is false, and the batch is best sent
// whole, when it holds fewer than two datagrams or none of PathProbeMin
// bytes or more.
func SplitProbe(bufs [][]byte) (parts [3][][]byte, ok bool) {
	if len(bufs) < 2 {
		return parts, false
	}
	big := 0
	for i, b := range bufs {
		if len(b) > len(bufs[big]) {
			big = i
		}
	}
	if len(bufs[big]) < PathProbeMin {
		return parts, false
	}
	return [3][][]byte{bufs[:big], bufs[big : big+1], bufs[big+1:]}, true
}
