package tests

//  PFX-c1 10.77.0.10                                  PFX-c2 10.77.0.20
//    eth0 (TAP), MAC changed from inside                 eth0 (TAP)
//        |                                                   |
//  vxwire up (PFX-h1)                                  vxwire up (PFX-h2)
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24

import (
	"fmt"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// TestSpoofedSourceMAC checks anti-spoofing: once a container sends with a
// source MAC other than the one vxwire gave it, its frames are dropped and
// counted as spoofed, and it reaches no one.
func TestSpoofedSourceMAC(t *testing.T) {
	e := newEnv(t)
	p := e.bluePair()
	h1, c1, c2 := p.h1, p.c1, p.c2
	e.mustPing(c1, "10.77.0.20")

	before := e.mustStatus(h1)
	e.must("ip", "-n", c1.name, "link", "set", "eth0", "address", "02:00:00:00:66:01")
	e.must("ip", "-n", c1.name, "neigh", "flush", "all")
	e.must("ip", "-n", c2.name, "neigh", "flush", "all")
	e.mustNotPing(c1, "10.77.0.20")
	e.eventually(readyTimeout, "spoofed frames counted", func() error {
		st, err := e.status(h1)
		if err != nil {
			return err
		}
		if drops(st, api.DropSpoofed) <= drops(before, api.DropSpoofed) {
			return fmt.Errorf("drops[%s] did not grow; drops now %v", api.DropSpoofed, st.Counters.Drops)
		}
		return nil
	})
}
