package encap

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// smallPathNS creates a network namespace whose route to 198.18.9.2 has
// MTU 1300 (through lo, where such datagrams are dropped unanswered), and
// returns its path. It skips when not root.
func smallPathNS(t *testing.T) string {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	name := fmt.Sprintf("vxencap%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run("-n", name, "link", "set", "lo", "up")
	run("-n", name, "addr", "add", "198.18.9.1/32", "dev", "lo")
	run("-n", name, "route", "add", "198.18.9.2/32", "dev", "lo", "mtu", "lock", "1300", "src", "198.18.9.1")
	return "/var/run/netns/" + name
}

// TestPathMTURoute reads a route's MTU through PathMTU.
func TestPathMTURoute(t *testing.T) {
	path := smallPathNS(t)
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		mtu, err := PathMTU(netip.MustParseAddrPort("198.18.9.2:4789"))
		if err == nil && mtu != 1300 {
			err = fmt.Errorf("path mtu %d, want 1300", mtu)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGSOAbovePathMTU sends a GSO batch whose segments do not fit the
// path to one destination: every datagram is still sent (without GSO,
// fragmented by the kernel), and GSO stays on at full size for the other
// destinations. Before, the conn-wide GSO limit dropped below the
// segment size for every destination.
func TestGSOAbovePathMTU(t *testing.T) {
	if _, kgso := kernelOffloads(t); !kgso {
		t.Skip("kernel without UDP GSO")
	}
	path := smallPathNS(t)
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		c, err := Listen(netip.MustParseAddrPort("198.18.9.1:0"), 64)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, gso := c.Offload(); !gso {
			return fmt.Errorf("gso off from the start")
		}
		if err := c.Write(payloads(repeat(40, 1400)...), netip.MustParseAddrPort("198.18.9.2:4789")); err != nil {
			return fmt.Errorf("write above the path mtu: %w", err)
		}
		if got := c.gsoMaxSeg.Load(); got != maxUDPPayload4 {
			return fmt.Errorf("gsoMaxSeg = %d after one small path, want %d", got, maxUDPPayload4)
		}
		if _, gso := c.Offload(); !gso {
			return fmt.Errorf("gso turned off by one small path")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
