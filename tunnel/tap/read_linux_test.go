package tap

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// TestNativeLoneFrameFirst checks the latency rule of Read: the first Read
// after Wait found the TAP drained returns the frame that woke it without
// reading on, and the next Wait does not park, so the next Read batches
// the frames queued behind it. Three datagrams are queued on the TAP before
// the reader looks: a first Read returning all three (as before this rule)
// or a second Wait that parks fails the test.
func TestNativeLoneFrameFirst(t *testing.T) {
	requireRoot(t)
	name, path := newNetNS(t, "l")
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Create(testConfig(path, 251, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	bufs, sizes := testBufs(8, 2000)
	// The reader starts drained and parked, as an idle port's does.
	if n, err := d.Read(bufs, sizes, 0); err != nil || n != 0 || !d.rd.drained {
		t.Fatalf("first Read of a silent TAP = %d, %v (drained %v); want 0 frames, drained", n, err, d.rd.drained)
	}
	// A static neighbor, so the datagrams leave without ARP.
	dst := netip.AddrFrom4([4]byte{10, 99, 251, 5})
	ipCmd(t, "-n", name, "neigh", "add", dst.String(), "lladdr", "02:99:00:fb:00:05", "dev", d.cfg.Name, "nud", "permanent")
	err = ns.WithNetNSPath(path, func(ns.NetNS) error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range 3 {
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Read(bufs, sizes, 0); err != nil || n != 1 {
		t.Fatalf("Read after a wakeup = %d frames, %v; want the lone first frame", n, err)
	}
	if d.rd.drained {
		t.Fatal("the lone Read marked the TAP drained: the next Wait would park with frames queued")
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	if n, err := d.Read(bufs, sizes, 0); err != nil || n != 2 {
		t.Fatalf("Read after the lone one = %d frames, %v; want the 2 queued behind it in one batch", n, err)
	}
}
