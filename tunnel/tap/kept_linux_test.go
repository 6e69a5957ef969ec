package tap

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSameKept checks each part of a kept TAP's identity that a reopen
// compares, one change at a time.
func TestSameKept(t *testing.T) {
	want := Identity{NetNSDev: 4, NetNSIno: 4026532285, NetNSCookie: 77, Index: 2, UserNSDev: 4, UserNSIno: 4026531837}
	for _, tc := range []struct {
		name string
		edit func(*Identity)
		err  error
	}{
		{"same", func(*Identity) {}, nil},
		{"inode", func(id *Identity) { id.NetNSIno++ }, ErrNetNSChanged},
		{"device", func(id *Identity) { id.NetNSDev++ }, ErrNetNSChanged},
		{"cookie", func(id *Identity) { id.NetNSCookie++ }, ErrNetNSChanged},
		{"user namespace", func(id *Identity) { id.UserNSIno++ }, ErrNetNSChanged},
		{"index", func(id *Identity) { id.Index++ }, ErrLinkChanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := want
			tc.edit(&got)
			if err := sameKept(got, want); !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("sameKept = %v, want %v", err, tc.err)
			}
		})
	}
}

// TestAdoptKeptReopen passes a TAP as a rootless hook does, adopts and
// keeps it, and reopens it as a restarted daemon does through the helper:
// the same TAP is adopted again with the same identity; a reopen that
// expects another namespace (cookie) or another index is refused and
// leaves the link; a socket of another namespace is refused; a name that
// is gone says so; RemoveAdopted removes only the TAP it was told.
func TestAdoptKeptReopen(t *testing.T) {
	requireRoot(t)
	nameA, pathA := newNetNS(t, "a")
	_, pathB := newNetNS(t, "b")
	cfg := testConfig(pathA, 251, 7)
	cfg.Name = "eth0"
	f, err := OpenInNetNS(pathA, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := SocketInNetNS(pathA)
	if err != nil {
		t.Fatal(err)
	}
	d, err := AdoptKept(f, sock, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := d.Identity()
	if !d.Persistent() || id.NetNSCookie == 0 || id.Index <= 0 || id.UserNSIno == 0 {
		t.Fatalf("kept %+v, persistent %v", id, d.Persistent())
	}
	if err := d.Keep(); err != nil {
		t.Fatal(err)
	}
	linkThere := func(what string) {
		t.Helper()
		if out, err := exec.Command("ip", "-n", nameA, "link", "show", cfg.Name).CombinedOutput(); err != nil {
			t.Fatalf("%s: the link is gone: %v %s", what, err, out)
		}
	}
	linkThere("after Keep")

	refuse := func(what string, want error, edit func(*Identity), sockNS string) {
		t.Helper()
		f, s, err := OpenKeptInNetNS(pathA, cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		if sockNS != "" {
			s.Close()
			if s, err = SocketInNetNS(sockNS); err != nil {
				t.Fatal(err)
			}
		}
		other := id
		edit(&other)
		c := cfg
		c.Reopen = &other
		if _, err := AdoptKept(f, s, c, nil); !errors.Is(err, want) {
			t.Fatalf("%s: AdoptKept = %v, want %v", what, err, want)
		}
		linkThere(what)
	}
	refuse("another cookie", ErrNetNSChanged, func(o *Identity) { o.NetNSCookie++ }, "")
	refuse("another index", ErrLinkChanged, func(o *Identity) { o.Index++ }, "")
	refuse("a socket of another namespace", ErrOtherNetNS, func(*Identity) {}, pathB)

	if _, _, err := OpenKeptInNetNS(pathA, "gone0"); !errors.Is(err, ErrTAPGone) {
		t.Fatalf("OpenKeptInNetNS(gone0) = %v, want ErrTAPGone", err)
	}
	f, sock, err = OpenKeptInNetNS(pathA, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg
	c.Reopen = &id
	d, err = AdoptKept(f, sock, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Identity(); got != id {
		t.Fatalf("reopened %+v, kept %+v", got, id)
	}
	if err := d.Keep(); err != nil {
		t.Fatal(err)
	}

	f, sock, err = OpenKeptInNetNS(pathA, cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	other := id
	other.NetNSCookie++
	if err := RemoveAdopted(f, sock, cfg.Name, other); !errors.Is(err, ErrNetNSChanged) {
		t.Fatalf("RemoveAdopted of another namespace's = %v, want ErrNetNSChanged", err)
	}
	linkThere("after a refused removal")
	if f, sock, err = OpenKeptInNetNS(pathA, cfg.Name); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAdopted(f, sock, cfg.Name, id); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", nameA, "link", "show", cfg.Name).CombinedOutput(); err == nil {
		t.Errorf("link still present after RemoveAdopted: %s", out)
	}
}

// checkOwnedEnv names, for TestCheckOwnedChild, the namespace to check.
const checkOwnedEnv = "VXWIRE_TAP_TEST_CHECK_OWNED"

// TestCheckOwnedChild is TestCheckOwned's child, run as another user: it
// prints what CheckOwned says of the namespace in checkOwnedEnv.
func TestCheckOwnedChild(t *testing.T) {
	path := os.Getenv(checkOwnedEnv)
	if path == "" {
		t.Skip("run by TestCheckOwned")
	}
	err := CheckOwned(path)
	fmt.Printf("owned=%v notowned=%v err=%v\n", err == nil, errors.Is(err, ErrNotOwned), err)
}

// TestCheckOwned runs CheckOwned as an ordinary user (nobody) on a network
// namespace of root's (refused with ErrNotOwned: a rootless daemon never
// sends its helper there) and, beside it, on one of a user namespace that
// nobody made (accepted).
func TestCheckOwned(t *testing.T) {
	requireRoot(t)
	const nobody = 65534
	_, rootNS := newNetNS(t, "root")
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // nobody runs the copy below
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tap.test")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		return cmd
	}
	holder := asNobody("unshare", "--user", "--net", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Skipf("nobody cannot make a user namespace: %v", err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	own := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	// Wait until unshare has moved the holder out of this namespace.
	for deadline := time.Now().Add(10 * time.Second); ; {
		a, errA := os.Readlink(own)
		b, errB := os.Readlink("/proc/self/ns/net")
		if errA == nil && errB == nil && a != b {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder did not leave the namespace: %s %v", a, errA)
		}
		time.Sleep(10 * time.Millisecond)
	}
	check := func(path string) string {
		t.Helper()
		cmd := asNobody(bin, "-test.run=^TestCheckOwnedChild$", "-test.v")
		cmd.Env = append(os.Environ(), checkOwnedEnv+"="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v %s", err, out)
		}
		return string(out)
	}
	if out := check(rootNS); !strings.Contains(out, "notowned=true") {
		t.Errorf("CheckOwned(%s) as nobody: %s", rootNS, out)
	}
	if out := check(own); !strings.Contains(out, "owned=true") {
		t.Errorf("CheckOwned(%s, nobody's) as nobody: %s", own, out)
	}
}
