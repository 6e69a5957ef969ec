package tests

// A vxwire restart under running Docker containers.
//
//   PFX-h1: vxwire (kill -9, restarted) + dockerd     PFX-h2: vxwire + dockerd
//     web1: eth0 blue (a TAP Docker moved in)            web2: eth0 blue

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerRestartKeepsContainer kills the vxwire daemon under a running
// Docker container and starts it again. The container's eth0, which
// Docker moved into it and renamed, stays with its address; the new
// daemon finds it in the container by the namespace identity it saved
// and serves it again, with the same address and name, and `docker rm`
// afterwards detaches it. Before, a vxwire restart took the container's
// eth0 with it and released its address: the check of eth0 while the
// daemon is dead failed.
func TestDockerRestartKeepsContainer(t *testing.T) {
	e := newEnv(t)
	h1, _, d1, _, k1, k2 := e.dockerPair()
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/24", "blue")
	}
	k1.mustDocker("run", "-d", "--name", "web1", "--network", "blue", "--dns", "10.79.0.1", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "web2", "--network", "blue", "--dns", "10.79.0.1", "bb:1", "sleep", "600")
	a1, a2 := k1.containerAddr("web1", "eth0"), k2.containerAddr("web2", "eth0")
	e.eventually(45*time.Second, "web1 pings web2", func() error {
		_, err := k1.docker("exec", "web1", "ping", "-c", "1", "-W", "1", a2)
		return err
	})
	before, ok, err := e.apiEndpoint(h1, "web1")
	if err != nil || !ok {
		t.Fatalf("h1 does not list web1: %v %v", ok, err)
	}
	// The record of where Docker moved it is written after the move.
	e.eventually(10*time.Second, "web1's interface located", func() error {
		b, err := e.readState(h1, "taps", blue.name+".web1.json")
		if err != nil || !strings.Contains(b, `"moved":true`) {
			return fmt.Errorf("record %q: %v", b, err)
		}
		return nil
	})

	d1.kill()
	if link, err := k1.docker("exec", "web1", "ip", "-o", "addr", "show", "eth0"); err != nil || !strings.Contains(link, a1) {
		t.Fatalf("web1's eth0 did not outlive the daemon: %v\n%s", err, link)
	}
	d1 = e.startDaemon(h1, filepath.Join(e.dir, h1.id+".toml"))
	d1.waitReady("web1")
	after, ok, err := e.apiEndpoint(h1, "web1")
	if err != nil || !ok || after.Address != before.Address || after.MAC != before.MAC {
		t.Fatalf("web1 after the restart: %+v (%v %v), before %+v", after, ok, err, before)
	}
	k1.mustDocker("exec", "web1", "ping", "-c", "3", "-W", "1", a2)
	e.eventually(20*time.Second, "web2 pings web1 by name", func() error {
		_, err := k2.docker("exec", "web2", "ping", "-c", "1", "-W", "1", "web1")
		return err
	})

	k1.mustDocker("rm", "-f", "web1")
	e.waitDetached(h1, "web1")
}

// readState reads a file of h's state_dir.
func (e *env) readState(h *host, elem ...string) (string, error) {
	b, err := os.ReadFile(filepath.Join(append([]string{e.dir, h.id + "-state"}, elem...)...))
	return string(b), err
}
