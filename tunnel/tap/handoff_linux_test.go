package tap

import (
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestNativeHandoff makes a handoff TAP, which only gets its MAC and MTU,
// moves it to another namespace under another name as Docker does, and
// checks that closing the device removes it there.
func TestNativeHandoff(t *testing.T) {
	requireRoot(t)
	defer goleak.VerifyNone(t)
	src, srcPath := newNetNS(t, "s")
	dst, _ := newNetNS(t, "d")
	cfg := Config{NetNS: srcPath, Name: "vxwabc", MAC: []byte{2, 0x99, 0, 0, 0, 9}, MTU: 1400, Handoff: true}
	d, err := Create(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	link := ipCmd(t, "-n", src, "-o", "link", "show", "vxwabc")
	for _, want := range []string{"mtu 1400", "link/ether 02:99:00:00:00:09", "state DOWN"} {
		if !strings.Contains(link, want) {
			t.Errorf("handoff link lacks %q: %s", want, link)
		}
	}
	if addr := ipCmd(t, "-n", src, "-o", "-4", "addr", "show", "dev", "vxwabc"); strings.TrimSpace(addr) != "" {
		t.Errorf("handoff link has an address: %s", addr)
	}
	ipCmd(t, "-n", src, "link", "set", "vxwabc", "netns", dst, "name", "eth1")
	ipCmd(t, "-n", dst, "link", "set", "eth1", "up")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", dst, "link", "show", "eth1").CombinedOutput(); err == nil {
		t.Errorf("the moved link outlived Close: %s", out)
	}
}
