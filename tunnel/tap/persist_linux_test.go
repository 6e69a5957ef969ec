package tap

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestNativeKeepReopen keeps a TAP past its device (as a crash or a
// graceful stop does), checks that the link, the address Create set and
// an address and route the container added itself are all still there,
// then reopens it and checks that nothing was touched and the carrier is
// back. Close then removes it for good.
func TestNativeKeepReopen(t *testing.T) {
	requireRoot(t)
	name, path := newNetNS(t, "k")
	cfg := testConfig(path, 240, 3)
	cfg.GSOMaxSegs = 44
	d, err := Create(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := d.Identity()
	if id.Index == 0 || id.NetNSIno == 0 || !d.Persistent() {
		t.Fatalf("identity %+v persistent %v", id, d.Persistent())
	}
	ipCmd(t, "-n", name, "addr", "add", "10.77.0.9/32", "dev", "eth0")
	ipCmd(t, "-n", name, "route", "add", "10.66.0.0/16", "via", "10.99.240.254", "dev", "eth0")
	if err := d.Keep(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil { // after Keep, Close is a no-op
		t.Fatal(err)
	}
	link := ipCmd(t, "-n", name, "-o", "link", "show", "eth0")
	if !strings.Contains(link, "NO-CARRIER") {
		t.Errorf("kept link has a carrier with no device attached: %s", link)
	}
	checkOwn := func(when string) {
		t.Helper()
		addrs := ipCmd(t, "-n", name, "-o", "addr", "show", "dev", "eth0")
		for _, want := range []string{"10.99.240.3/24", "10.77.0.9/32"} {
			if !strings.Contains(addrs, want) {
				t.Errorf("%s: address %s gone: %s", when, want, addrs)
			}
		}
		routes := ipCmd(t, "-n", name, "route", "show")
		for _, want := range []string{"10.66.0.0/16 via 10.99.240.254", "default via 10.99.240.254"} {
			if !strings.Contains(routes, want) {
				t.Errorf("%s: route %s gone: %s", when, want, routes)
			}
		}
	}
	checkOwn("kept")

	// A wrong index or namespace identity is refused, touching nothing.
	bad := cfg
	bad.Reopen = &Identity{NetNSDev: id.NetNSDev, NetNSIno: id.NetNSIno, Index: id.Index + 1000}
	if _, err := Create(bad, nil); !errors.Is(err, ErrLinkChanged) {
		t.Errorf("reopen with another index = %v, want ErrLinkChanged", err)
	}
	bad.Reopen = &Identity{NetNSDev: id.NetNSDev, NetNSIno: id.NetNSIno + 1, Index: id.Index}
	if _, err := Create(bad, nil); !errors.Is(err, ErrNetNSChanged) {
		t.Errorf("reopen in another namespace = %v, want ErrNetNSChanged", err)
	}
	if id.NetNSCookie == 0 {
		t.Error("no namespace cookie (SO_NETNS_COOKIE) on this kernel")
	}
	bad.Reopen = &Identity{NetNSDev: id.NetNSDev, NetNSIno: id.NetNSIno, NetNSCookie: id.NetNSCookie + 1, Index: id.Index}
	if _, err := Create(bad, nil); !errors.Is(err, ErrNetNSChanged) {
		t.Errorf("reopen with the inode but another cookie = %v, want ErrNetNSChanged", err)
	}

	if link := ipCmd(t, "-n", name, "-d", "link", "show", "eth0"); !strings.Contains(link, "gso_max_segs 44 ") {
		t.Errorf("created link: %s", link)
	}
	cfg.Reopen = &id
	cfg.MTU = 1400 // drifted: set again; the addresses are not
	cfg.GSOMaxSegs = 30
	r, err := Create(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Identity() != id {
		t.Errorf("reopened identity %+v, want %+v", r.Identity(), id)
	}
	link = ipCmd(t, "-n", name, "-o", "link", "show", "eth0")
	if strings.Contains(link, "NO-CARRIER") || !strings.Contains(link, "mtu 1400") {
		t.Errorf("reopened link: %s", link)
	}
	if link := ipCmd(t, "-n", name, "-d", "link", "show", "eth0"); !strings.Contains(link, "gso_max_segs 30 ") {
		t.Errorf("reopened link kept its old GSO cap: %s", link)
	}
	checkOwn("reopened")
	// A second daemon cannot attach to a TAP a device holds.
	if _, err := Create(cfg, nil); err == nil {
		t.Error("a second reopen of a held tap succeeded")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "show", "eth0").CombinedOutput(); err == nil {
		t.Errorf("link still present after Close: %s", out)
	}
}

// TestNativeRemoveLeftover removes a kept TAP by its identity, and leaves
// alone a link of another index under the same name.
func TestNativeRemoveLeftover(t *testing.T) {
	requireRoot(t)
	name, path := newNetNS(t, "l")
	d, err := Create(testConfig(path, 241, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := d.Identity()
	d.Keep()
	other := id
	other.Index += 1000
	if err := Remove(path, "eth0", other); err != nil {
		t.Fatal(err)
	}
	ipCmd(t, "-n", name, "link", "show", "eth0")
	if err := Remove(path, "eth0", id); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "show", "eth0").CombinedOutput(); err == nil {
		t.Errorf("leftover still present after Remove: %s", out)
	}
	if err := Remove("/var/run/netns/vxtap-none", "eth0", id); err != nil {
		t.Errorf("Remove in a namespace that is gone: %v", err)
	}
}

// TestNativeKeptGoesWithNamespace checks the kernel behaviour leftovers
// rely on: a kept TAP goes away with its namespace instead of moving to
// the host's.
func TestNativeKeptGoesWithNamespace(t *testing.T) {
	requireRoot(t)
	name := "vxtap-gone"
	ipCmd(t, "netns", "add", name)
	defer exec.Command("ip", "netns", "del", name).Run()
	d, err := Create(testConfig("/var/run/netns/"+name, 242, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	mac := "02:99:00:f2:00:03"
	d.Keep()
	ipCmd(t, "netns", "del", name)
	if out := ipCmd(t, "-o", "link"); strings.Contains(out, mac) {
		t.Errorf("a kept tap outlived its namespace in the host's: %s", out)
	}
}
