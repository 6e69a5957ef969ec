package tests

//  PFX-c1 10.77.0.10                                  PFX-c2 10.77.0.20/24
//    eth0 (TAP)                                          eth0 (veth, MTU 1450)
//        |                                                   |
//  vxwire up (PFX-h1)                                 PFX-k0 - br0 - vx0
//                                                     (Linux kernel VXLAN, VNI 256,
//                                                      fdb 00:00:00:00:00:00 dst 198.18.0.1)
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//                                                      (ethtool -K PFX-u2 tx off)

import (
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// TestKernelVXLANInterop runs vxwire against the Linux kernel's VXLAN: the
// two must understand each other's frames in both directions, for ICMP and
// for TCP (whose checksums a broken encapsulation would spoil).
func TestKernelVXLANInterop(t *testing.T) {
	e := newEnv(t, "bridge", "ethtool")
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	h2.kernel = true
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers: []*host{h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}},
	}))
	e.kernelVXLAN(h2, 256, []string{h1.addr}, kernelPort{c2, "10.77.0.20/24"})
	d1.waitReady("c1")

	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c2, "10.77.0.10")
	e.transfer(c1, c2, "10.77.0.20", 16<<20, time.Minute)
	e.transfer(c2, c1, "10.77.0.10", 16<<20, time.Minute)

	// The kernel peer has no vote: no address-block log runs, so nothing
	// waits for a quorum that the kernel host cannot give.
	if log := d1.logText(); strings.Contains(log, "component=raft") {
		t.Errorf("vxwire runs an address-block log with a kernel peer:\n%s", tail(log, 10))
	}

	// Frames the kernel sent that vxwire could not make sense of.
	st := e.mustStatus(h1)
	for _, reason := range []string{api.DropShort, api.DropBadFlags, api.DropUnknownVNI, api.DropUnknownPeer, api.DropMalformedFrame} {
		if n := drops(st, reason); n > 0 {
			t.Errorf("vxwire dropped %d frames from the kernel peer as %s", n, reason)
		}
	}
}
