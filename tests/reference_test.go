package tests

//  PFX-c1 10.77.0.10                                  PFX-c2 10.77.0.20
//    eth0 (veth, MTU 1450)                               eth0 (veth, MTU 1450)
//        |                                                   |
//  PFX-k0 - br0 - vx0 (kernel VXLAN 256)       PFX-k0 - br0 - vx0 (kernel VXLAN 256)
//  PFX-h1                                              PFX-h2
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//     ^ tshark -f 'udp port 4789'

import (
	"testing"
	"time"
)

// TestReferenceKernelVXLAN runs the checks of the vxwire tests against two
// kernel VXLAN hosts, without vxwire. It needs no vxwire binary: it shows
// that the machine, the tools and the harness work, and that what the
// wire-format checks expect is what Linux itself sends.
func TestReferenceKernelVXLAN(t *testing.T) {
	e := newNetEnv(t, "bridge", "ethtool", "tshark")
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	e.kernelVXLAN(h1, 256, []string{h2.addr}, kernelPort{c1, "10.77.0.10/24"})
	e.kernelVXLAN(h2, 256, []string{h1.addr}, kernelPort{c2, "10.77.0.20/24"})

	capt := e.startCapture(h1.netns, h1.link, "udp port 4789")
	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c2, "10.77.0.10")
	rows := capt.captureUntil("echo requests and replies both ways", echoBothWays("10.77.0.10", "10.77.0.20"), vxlanFields...)
	checkVXLAN(t, rows, 256)

	e.transfer(c1, c2, "10.77.0.20", 16<<20, time.Minute)
	e.transfer(c2, c1, "10.77.0.10", 16<<20, time.Minute)
}
