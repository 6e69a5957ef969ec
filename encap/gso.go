package encap

const (
	// maxUDPPayload4 is the largest UDP payload in one IPv4 datagram.
	maxUDPPayload4 = 65535 - 20 - 8

	// maxGSOSegments is the kernel's UDP_MAX_SEGMENTS on every kernel with
	// UDP GSO (newer kernels accept 128; 64 is safe everywhere).
	maxGSOSegments = 64

	// ethHeaderLen is the Ethernet header of a frame, without a VLAN tag.
	ethHeaderLen = 14
)

// FramesPerSend is how many Ethernet frames of IP MTU mtu, each in a
// VXLAN datagram, one UDP GSO send on the underlay carries at most: the
// kernel's segment limit, and the payload of one IPv4 datagram.
//
// A container's TCP hands its TAP superframes of up to 64 KiB, which is a
// few frames more than one send holds at the usual MTUs (46 frames of
// MTU 1450 against 44). Such a superframe leaves as a full send and a
// short one, and a receiver with UDP GRO gets the short one as a message
// of its own, which then reaches the container as a write of its own.
// Capping the TAP's superframes at this many segments (tap.Config.GSOMaxSegs)
// makes each leave in one send and arrive in one write.
func FramesPerSend(mtu int) int {
	n := maxUDPPayload4 / (HeaderLen + ethHeaderLen + max(mtu, 1))
	return max(1, min(n, maxGSOSegments))
}
