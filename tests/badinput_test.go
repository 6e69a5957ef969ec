package tests

//  PFX-c1 10.77.0.10                                  PFX-c2 10.77.0.20
//    eth0 (TAP)                                          eth0 (TAP)
//        |                                                   |
//  vxwire up (PFX-h1)                                 vxwire up (PFX-h2)
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//                                                             + 198.18.0.3/24 (no peer's)
//                            <-- raw UDP to 198.18.0.1:4789 from a Go socket in PFX-h2

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// vxlanDatagram returns a VXLAN header (RFC 7348 §5: flags, 24 reserved
// bits, 24-bit VNI, 8 reserved bits) followed by frame.
func vxlanDatagram(flags byte, vni uint32, frame []byte) []byte {
	b := make([]byte, 8, 8+len(frame))
	b[0] = flags
	binary.BigEndian.PutUint32(b[4:], vni<<8)
	return append(b, frame...)
}

// arpRequest returns a broadcast Ethernet frame from src asking who has
// 10.77.0.10, telling sender. A container that received it would add
// sender to its neighbour table.
func arpRequest(src net.HardwareAddr, sender string) []byte {
	b := make([]byte, 0, 60)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = append(b, src...)
	b = append(b, 0x08, 0x06)                   // ARP
	b = append(b, 0, 1, 0x08, 0x00, 6, 4, 0, 1) // Ethernet, IPv4, request
	b = append(b, src...)
	b = append(b, netip.MustParseAddr(sender).AsSlice()...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	b = append(b, netip.MustParseAddr("10.77.0.10").AsSlice()...)
	return append(b, make([]byte, 60-len(b))...) // minimum frame size
}

// TestBadUnderlayInput sends the daemon datagrams it must drop and count:
// too short, I flag clear, unknown VNI, a bad inner frame, and a valid frame
// from an address that is no configured peer. None may reach a container,
// each must be counted under its reason, and traffic must flow afterwards.
func TestBadUnderlayInput(t *testing.T) {
	e := newEnv(t)
	p := e.bluePair()
	h1, h2, c1, c2, d1 := p.h1, p.h2, p.c1, p.c2, p.d1
	e.mustPing(c2, "10.77.0.10")
	e.must("ip", "-n", h2.name, "addr", "add", "198.18.0.3/24", "dev", h2.link)

	src := net.HardwareAddr{0x02, 0, 0, 0, 0x99, 1}
	valid := vxlanDatagram(0x08, 256, arpRequest(src, "10.77.0.91"))
	var short [][]byte
	for _, n := range []int{1, 4, 8, 15, 21} { // below 8 (VXLAN) + 14 (Ethernet) bytes
		short = append(short, valid[:n])
	}
	cases := []struct {
		reason  string
		from    string
		packets [][]byte
	}{
		{api.DropShort, h2.addr, short},
		{api.DropBadFlags, h2.addr, [][]byte{
			vxlanDatagram(0x00, 256, arpRequest(src, "10.77.0.92")),
			vxlanDatagram(0x80, 256, arpRequest(src, "10.77.0.92")),
			vxlanDatagram(0xf7, 256, arpRequest(src, "10.77.0.92")),
		}},
		{api.DropUnknownVNI, h2.addr, [][]byte{
			vxlanDatagram(0x08, 257, arpRequest(src, "10.77.0.93")),
			vxlanDatagram(0x08, 999, arpRequest(src, "10.77.0.93")),
			vxlanDatagram(0x08, 1<<24-1, arpRequest(src, "10.77.0.93")),
		}},
		{api.DropMalformedFrame, h2.addr, [][]byte{ // group and broadcast source MACs
			vxlanDatagram(0x08, 256, arpRequest(net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}, "10.77.0.94")),
			vxlanDatagram(0x08, 256, arpRequest(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "10.77.0.94")),
		}},
		{api.DropUnknownPeer, "198.18.0.3", [][]byte{valid, valid, valid}},
	}

	before := e.mustStatus(h1)
	to := netip.AddrPortFrom(netip.MustParseAddr(h1.addr), 4789)
	for _, c := range cases {
		e.sendUDP(h2.netns, c.from, to, c.packets...)
	}
	var after api.Status
	e.eventually(readyTimeout, "drops counted", func() error {
		if !d1.running() {
			return permanent(fmt.Errorf("daemon exited: %v", d1.err))
		}
		st, err := e.status(h1)
		if err != nil {
			return err
		}
		for _, c := range cases {
			if got := drops(st, c.reason) - drops(before, c.reason); got < uint64(len(c.packets)) {
				return fmt.Errorf("drops[%s] grew by %d, want %d; drops now %v", c.reason, got, len(c.packets), st.Counters.Drops)
			}
		}
		after = st
		return nil
	})
	for _, c := range cases {
		if got := drops(after, c.reason) - drops(before, c.reason); got != uint64(len(c.packets)) {
			t.Errorf("drops[%s] grew by %d, want exactly %d (one per datagram sent)", c.reason, got, len(c.packets))
		}
	}

	// A container that had received any of the ARP requests would have
	// learned its sender (10.77.0.9x) as a neighbour.
	if neigh := e.mustIn(c1, "ip", "neigh", "show"); strings.Contains(neigh, "10.77.0.9") {
		t.Errorf("a dropped frame reached container c1; its neighbours:\n%s", neigh)
	}
	// The same request, well-formed and from the peer, does reach it: the
	// check above can see a delivered frame.
	e.sendUDP(h2.netns, h2.addr, to, vxlanDatagram(0x08, 256, arpRequest(src, "10.77.0.99")))
	e.eventually(readyTimeout, "c1 learns 10.77.0.99 from a valid ARP request", func() error {
		if out, _ := e.in(c1, "ip", "neigh", "show", "10.77.0.99"); !strings.Contains(out, "10.77.0.99") {
			return fmt.Errorf("not in c1's neighbour table")
		}
		return nil
	})
	e.mustPing(c1, "10.77.0.20")
	e.mustPing(c2, "10.77.0.10")
}
