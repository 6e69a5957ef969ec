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
func smallPathNS(t testing.TB) string {
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
		// The next Writes there are built to fit the path: no failed
		// send, no route lookup, no allocation.
		if p := c.pathSeg.Load(); p == nil || p.maxSeg != 1300-ipv4UDPHeaders {
			return fmt.Errorf("path limit remembered %+v, want %d", p, 1300-ipv4UDPHeaders)
		}
		bufs, dst := payloads(repeat(40, 1400)...), netip.MustParseAddrPort("198.18.9.2:4789")
		var werr error
		if n := testing.AllocsPerRun(20, func() { werr = c.Write(bufs, dst) }); n != 0 || werr != nil {
			return fmt.Errorf("write to a known small path: %.1f allocations, error %v", n, werr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWriteAbovePathMTU sends batches of 64 datagrams too large for
// the path to their destination for GSO, as a container's UDP without DF
// to a peer behind a smaller link produces.
func BenchmarkWriteAbovePathMTU(b *testing.B) {
	path := smallPathNS(b)
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		c, err := Listen(netip.MustParseAddrPort("198.18.9.1:0"), 64)
		if err != nil {
			return err
		}
		defer c.Close()
		bufs := payloads(repeat(64, 1400)...)
		dst := netip.MustParseAddrPort("198.18.9.2:4789")
		b.ReportAllocs()
		b.SetBytes(64 * 1400)
		for b.Loop() {
			if err := c.Write(bufs, dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
