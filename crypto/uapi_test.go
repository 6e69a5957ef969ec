package crypto

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// uniqueName returns an interface name no other test uses: the UAPI
// socket directory is global, not per network namespace.
func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the UAPI socket lives in /var/run/wireguard")
	}
}

func TestUAPIProtocol(t *testing.T) {
	needRoot(t)
	t.Cleanup(func() { goleak.VerifyNone(t) })
	name := uniqueName("vxt")
	a, b := newNode(t, 1), newNode(t, 2)
	a.start(t, func(c *Config) { c.Name = name })
	b.start(t, nil)
	connect(t, a, b)
	sock := filepath.Join("/var/run/wireguard", name+".sock")

	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	ask := func(req string) string {
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading answer to %q: %v", req, err)
			}
			out.WriteString(line)
			if strings.HasPrefix(line, "errno=") {
				if blank, _ := r.ReadString('\n'); blank != "\n" {
					t.Fatalf("no blank line after %q", line)
				}
				return out.String()
			}
		}
	}
	get := ask("get=1\n\n")
	if !strings.Contains(get, "public_key="+b.key.Public().hex()+"\n") || !strings.HasSuffix(get, "errno=0\n") {
		t.Fatalf("get answered %q", get)
	}
	// A set is refused, and the connection stays usable.
	if got := ask("set=1\npublic_key=" + b.key.Public().hex() + "\nremove=true\n\n"); got != "errno=-1\n" {
		t.Fatalf("set answered %q", got)
	}
	if got := ask("get=1\n\n"); got != get && !strings.Contains(got, b.key.Public().hex()) {
		t.Fatalf("peer gone after refused set: %q", got)
	}

	// The name is taken while a serves it.
	if _, err := New(Config{PrivateKey: b.key, TunnelAddr: b.tunnel, Name: name}, testLogger(t)); err == nil {
		t.Fatal("second device with the same name")
	}
	a.dev.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after close: %v", err)
	}
}

func TestWGShow(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("wg (wireguard-tools) is not installed")
	}
	t.Cleanup(func() { goleak.VerifyNone(t) })
	name := uniqueName("vxt")
	a, b := newNode(t, 1), newNode(t, 2)
	a.start(t, func(c *Config) {
		c.Name = name
		c.Secret, c.RotateEvery = []byte("wg show test secret"), time.Hour
	})
	b.start(t, func(c *Config) { c.Secret, c.RotateEvery = []byte("wg show test secret"), time.Hour })
	connect(t, a, b)
	sendBatch(t, a, b.id, 0, 3, 100)
	if len(b.collect(3, 5*time.Second)) == 0 {
		t.Fatal("no traffic")
	}

	dump := func() string {
		out, err := exec.Command("wg", "show", name, "dump").CombinedOutput()
		if err != nil {
			t.Fatalf("wg show: %v: %s", err, out)
		}
		return string(out)
	}
	before := dump()
	lines := strings.Split(strings.TrimSpace(before), "\n")
	if len(lines) != 2 {
		t.Fatalf("wg show dump:\n%s", before)
	}
	// interface: private-key public-key listen-port fwmark
	f := strings.Fields(lines[0])
	if f[1] != a.key.Public().String() || f[2] != strconv.Itoa(int(a.peer().Endpoint.Port())) {
		t.Fatalf("interface line %q", lines[0])
	}
	// peer: public-key preshared-key endpoint allowed-ips handshake rx tx keepalive
	f = strings.Fields(lines[1])
	wantPSK := a.dev.ring.PeerPSK(a.dev.Status()[0].PSKEpoch, a.key.Public(), b.key.Public())
	if f[0] != b.key.Public().String() || f[1] != wantPSK.String() || f[2] != b.peer().Endpoint.String() || f[3] != b.tunnel.String()+"/32" || f[4] == "0" {
		t.Fatalf("peer line %q", lines[1])
	}
	out, err := exec.Command("wg", "show", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "endpoint: "+b.peer().Endpoint.String()) {
		t.Fatalf("wg show: %v\n%s", err, out)
	}
	t.Logf("wg show %s:\n%s", name, out)

	// wg set fails and changes nothing.
	out, err = exec.Command("wg", "set", name, "peer", b.key.Public().String(), "remove").CombinedOutput()
	if err == nil {
		t.Fatalf("wg set succeeded: %s", out)
	}
	t.Logf("wg set: %v: %s", err, strings.TrimSpace(string(out)))
	if len(a.dev.Status()) != 1 {
		t.Fatal("peer removed")
	}
	after := strings.Split(strings.TrimSpace(dump()), "\n")
	if len(after) != 2 || strings.Fields(after[1])[0] != b.key.Public().String() {
		t.Fatalf("after wg set:\n%v", after)
	}
	sendBatch(t, a, b.id, 10, 3, 100)
	if len(b.collect(3, 5*time.Second)) == 0 {
		t.Fatal("no traffic after refused wg set")
	}
}

// TestUAPISocketDir checks the socket of a rootless daemon: in the given
// directory, served, exclusive while served and removed on close; it
// needs no root.
func TestUAPISocketDir(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := filepath.Join(t.TempDir(), "wireguard")
	a := newNode(t, 1)
	a.start(t, func(c *Config) { c.Name, c.SocketDir = "vxr", dir })
	sock := filepath.Join(dir, "vxr.sock")
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("get=1\n\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	var got strings.Builder
	for !strings.HasPrefix(got.String(), "errno=") && !strings.Contains(got.String(), "\nerrno=") {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the dump: %v (so far %q)", err, got.String())
		}
		got.WriteString(line)
	}
	c.Close()
	if !strings.Contains(got.String(), "private_key=") || !strings.Contains(got.String(), "errno=0\n") {
		t.Fatalf("get answered %q", got.String())
	}
	if _, err := New(Config{PrivateKey: a.key, TunnelAddr: a.tunnel, Name: "vxr", SocketDir: dir}, testLogger(t)); err == nil {
		t.Fatal("second device on the same socket")
	}
	a.dev.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after close: %v", err)
	}
}
