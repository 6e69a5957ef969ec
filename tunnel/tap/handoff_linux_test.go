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

// TestNativeHandoffKeepWhere moves a handoff TAP as Docker does, finds it
// with Where, keeps it past its device, finds its namespace again by a
// process in it (FindNetNS) and reopens it there under its new name.
func TestNativeHandoffKeepWhere(t *testing.T) {
	requireRoot(t)
	src, srcPath := newNetNS(t, "s")
	dst, dstPath := newNetNS(t, "d")
	cfg := Config{NetNS: srcPath, Name: "vxwdef", MAC: []byte{2, 0x99, 0, 0, 0, 10}, MTU: 1400, Handoff: true}
	d, err := Create(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ipCmd(t, "-n", src, "link", "set", "vxwdef", "netns", dst, "name", "eth1")
	ipCmd(t, "-n", dst, "addr", "add", "10.99.9.9/24", "dev", "eth1")
	id, name, err := d.Where()
	if err != nil {
		t.Fatal(err)
	}
	var want Identity
	if err := withNetNS(dstPath, nil, func(in Identity) error { want = in; return nil }); err != nil {
		t.Fatal(err)
	}
	if name != "eth1" || id.NetNSIno != want.NetNSIno || id.Index <= 0 {
		t.Fatalf("Where = %+v %q, want namespace %+v and eth1", id, name, want)
	}
	if err := d.Keep(); err != nil {
		t.Fatal(err)
	}
	if FindNetNS(id) != "" {
		t.Fatal("FindNetNS found a namespace no process is in")
	}
	// A process in the namespace, as a container's.
	sleeper := exec.Command("ip", "netns", "exec", dst, "sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	var path string
	for i := 0; i < 200 && path == ""; i++ { // until the child is in the namespace
		path = FindNetNS(id)
	}
	if path == "" {
		t.Fatal("FindNetNS did not find the namespace of a running process")
	}
	cfg.NetNS, cfg.Name, cfg.Reopen = path, name, &id
	r, err := Create(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if addr := ipCmd(t, "-n", dst, "-o", "addr", "show", "dev", "eth1"); !strings.Contains(addr, "10.99.9.9/24") {
		t.Errorf("reopened handoff link lost its address: %s", addr)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", dst, "link", "show", "eth1").CombinedOutput(); err == nil {
		t.Errorf("the moved link outlived Close: %s", out)
	}
}
