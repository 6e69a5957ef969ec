package tests

//  PFX-c1 10.77.0.10                                  PFX-c2 10.77.0.20
//    eth0 (TAP)                                          eth0 (TAP)
//        |                                                   |
//  vxwire up (PFX-h1)                                  vxwire up (PFX-h2)
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//     ^ tshark -f 'udp port 4789'
//
//  network blue: VNI 256, 10.77.0.0/24

import (
	"fmt"
	"testing"
)

// vxlanFields are the columns checkVXLAN reads from tshark.
var vxlanFields = []string{"udp.dstport", "vxlan.flags", "vxlan.vni", "eth.type", "ip.src", "icmp.type"}

// echoBothWays reports whether rows (vxlanFields) hold an inner ICMP echo
// request and reply from each of a and b.
func echoBothWays(a, b string) func(rows [][]string) bool {
	return func(rows [][]string) bool {
		return pinged(a, b, 4, 5)(rows) && pinged(b, a, 4, 5)(rows)
	}
}

// checkVXLAN fails the test unless every captured datagram is VXLAN as RFC
// 7348 §5 has it, as tshark decodes it: UDP destination port 4789, flags
// with only the I bit set (tshark shows the 16-bit flags field, I = 0x0800),
// the given VNI, and an inner Ethernet frame carrying IPv4 or ARP.
func checkVXLAN(t *testing.T, rows [][]string, vni int) {
	t.Helper()
	if len(rows) == 0 {
		t.Fatal("no VXLAN datagram captured")
	}
	for i, r := range rows {
		if len(r) != len(vxlanFields) {
			t.Errorf("frame %d: want fields %v, got %q", i+1, vxlanFields, r)
			continue
		}
		inner := last(r[3])
		if r[0] != "4789" || r[1] != "0x0800" || r[2] != fmt.Sprint(vni) || (inner != "0x0800" && inner != "0x0806") {
			t.Errorf("frame %d: want udp.dstport=4789 vxlan.flags=0x0800 vxlan.vni=%d inner eth.type 0x0800|0x0806, got %q",
				i+1, vni, r)
		}
	}
	t.Logf("%d VXLAN datagrams decoded by tshark, all well-formed", len(rows))
}

// TestWireFormat has tshark, which vxwire's authors did not write, decode
// what vxwire puts on the underlay.
func TestWireFormat(t *testing.T) {
	e := newEnv(t, "tshark")
	p := e.bluePair()
	h1, c1, c2 := p.h1, p.c1, p.c2

	capt := e.startCapture(h1.netns, h1.link, "udp port 4789")
	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c2, "10.77.0.10")
	rows := capt.captureUntil("echo requests and replies both ways", echoBothWays("10.77.0.10", "10.77.0.20"), vxlanFields...)
	checkVXLAN(t, rows, 256)
}
