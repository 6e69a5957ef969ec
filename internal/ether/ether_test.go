package ether

import "testing"

// TestLayoutTiles checks that the header and ARP offsets follow each other
// without gap or overlap, so a mistyped number cannot slip through.
func TestLayoutTiles(t *testing.T) {
	const mac = 6
	for _, c := range []struct {
		name      string
		off, size int
		next      int
	}{
		{"dst", OffDst, mac, OffSrc},
		{"src", OffSrc, mac, OffType},
		{"type", OffType, 2, HeaderLen},
		{"arp htype", ARPOffHType, 2, ARPOffPType},
		{"arp ptype", ARPOffPType, 2, ARPOffHLen},
		{"arp hlen", ARPOffHLen, 1, ARPOffPLen},
		{"arp plen", ARPOffPLen, 1, ARPOffOp},
		{"arp op", ARPOffOp, 2, ARPOffSHA},
		{"arp sha", ARPOffSHA, ARPHLen, ARPOffSPA},
		{"arp spa", ARPOffSPA, ARPPLen, ARPOffTHA},
		{"arp tha", ARPOffTHA, ARPHLen, ARPOffTPA},
		{"arp tpa", ARPOffTPA, ARPPLen, ARPLen},
	} {
		if c.off+c.size != c.next {
			t.Errorf("%s: offset %d + size %d = %d, next field at %d", c.name, c.off, c.size, c.off+c.size, c.next)
		}
	}
}
