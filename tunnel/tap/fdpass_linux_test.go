package tap

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAdoptRefusesOther checks that Adopt refuses a descriptor that is not
// a TAP (here a pipe, as a caller of the API could send) and closes it.
func TestAdoptRefusesOther(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = Adopt(w, Config{NetNS: "/proc/1/ns/net", Name: "eth0", MTU: 1450}, nil)
	if !errors.Is(err, ErrNotTAP) {
		t.Fatalf("Adopt(pipe) = %v, want ErrNotTAP", err)
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Fatal("Adopt left the refused descriptor open")
	}
}

// TestAdoptChecksNetNS opens a TAP in one namespace as a rootless hook
// does and passes it claiming another: Adopt refuses it (before this
// check, the daemon would serve a TAP of any namespace under the name of
// the claimed one). Beside it, the same TAP claiming its own namespace is
// adopted and configured, and closing it removes the link.
func TestAdoptChecksNetNS(t *testing.T) {
	requireRoot(t)
	nameA, pathA := newNetNS(t, "a")
	_, pathB := newNetNS(t, "b")
	f, err := OpenInNetNS(pathA, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	dup, err := unix.Dup(int(f.Fd())) // a second descriptor of the same TAP
	if err != nil {
		t.Fatal(err)
	}
	g := os.NewFile(uintptr(dup), "tap")
	if _, err := Adopt(g, Config{NetNS: pathB, Name: "eth0", MTU: 1400}, nil); !errors.Is(err, ErrOtherNetNS) {
		t.Fatalf("Adopt of a TAP of %s claiming %s = %v, want ErrOtherNetNS", pathA, pathB, err)
	}
	cfg := testConfig(pathA, 250, 7)
	cfg.MTU = 1400
	d, err := Adopt(f, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := ConfigureInNetNS(cfg); err != nil {
		t.Fatal(err)
	}
	if link := ipCmd(t, "-n", nameA, "-o", "link", "show", "eth0"); !strings.Contains(link, "mtu 1400") || !strings.Contains(link, "UP") {
		t.Errorf("link after ConfigureInNetNS: %s", link)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", nameA, "link", "show", "eth0").CombinedOutput(); err == nil {
		t.Errorf("link still present after Close: %s", out)
	}
}
