package tests

// vxwire restarts under a running Docker Engine:
//
//   PFX-h1: vxwire (restarted) + dockerd          PFX-h2: vxwire + dockerd
//   PFX-u1 198.18.0.1 ============ veth ============ PFX-u2 198.18.0.2
//     web1 on blue (run before the restart)           web2 on blue, db2 on red
//     db1 on red (run after it)
//
// red is created with docker network create on both hosts before the
// restart and used only after it.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerAcrossRestart restarts vxwire on h1 between `docker network
// create red` and `docker run --network red`, with web1 running on blue.
// After the restart Docker's objects of the previous run stay usable: a
// container runs on red and reaches h2's container on red, network
// connect adds red to web1 and network disconnect takes blue from it,
// docker rm -f and docker network rm succeed, and no endpoint is left in
// vxwire. Before this fix the plugin forgot Docker's networks with the
// process: docker run and network connect on red were refused ("not a
// vxwire network here"), and network rm left the vxwire network behind.
func TestDockerAcrossRestart(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	k1, k2 := e.startDocker(h1), e.startDocker(h2)
	cfg1 := e.writeConfig(h1, hostConf{peers: []*host{h2}, dockerPlug: filepath.Join(k1.plugins, "vxwire.sock")})
	d1 := e.startDaemon(h1, cfg1)
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, dockerPlug: filepath.Join(k2.plugins, "vxwire.sock")}))
	d1.waitReady()
	d2.waitReady()
	k1.stopBeforeDaemons()
	k2.stopBeforeDaemons()
	k1.importBusybox()
	k2.importBusybox()
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/24", "blue")
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.80.0.0/24", "red")
	}
	k1.mustDocker("run", "-d", "--name", "web1", "--network", "blue", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "web2", "--network", "blue", "bb:1", "sleep", "600")
	a2 := k2.containerAddr("web2", "eth0")
	e.eventually(45*time.Second, "web1 pings web2 before the restart", func() error {
		_, err := k1.docker("exec", "web1", "ping", "-c", "1", "-W", "1", a2)
		return err
	})

	if err := d1.stop(); err != nil {
		t.Fatalf("vxwire on h1 on SIGTERM: %v", err)
	}
	d1 = e.startDaemon(h1, cfg1)
	d1.waitReady()
	// web1's TAP is persistent: its eth0 outlived the daemon, and the new
	// daemon reopened it.
	if links, err := k1.docker("exec", "web1", "ip", "-o", "link", "show", "eth0"); err != nil {
		t.Fatalf("web1 lost eth0 across the restart: %v\n%s", err, links)
	}
	e.eventually(45*time.Second, "web1 pings web2 after the restart", func() error {
		_, err := k1.docker("exec", "web1", "ping", "-c", "1", "-W", "1", a2)
		return err
	})

	// docker run on red, created before the restart, reaching h2.
	k2.mustDocker("run", "-d", "--name", "db2", "--network", "red", "bb:1", "sleep", "600")
	k1.mustDocker("run", "-d", "--name", "db1", "--network", "red", "--dns", "10.80.0.1", "bb:1", "sleep", "600")
	r2 := k2.containerAddr("db2", "eth0")
	e.eventually(45*time.Second, "db1 pings db2 by name on red", func() error {
		_, err := k1.docker("exec", "db1", "ping", "-c", "1", "-W", "1", "db2")
		return err
	})

	// network connect and disconnect of web1, run before the restart.
	k1.mustDocker("network", "connect", "red", "web1")
	e.eventually(30*time.Second, "web1 pings db2 on red after network connect", func() error {
		_, err := k1.docker("exec", "web1", "ping", "-c", "1", "-W", "1", r2)
		return err
	})
	k1.mustDocker("network", "disconnect", "blue", "web1")

	// docker rm -f and network rm clean up in vxwire too.
	k1.mustDocker("rm", "-f", "web1", "db1")
	e.eventually(10*time.Second, "h1 lists no endpoint", func() error {
		eps, err := e.apiEndpoints(h1)
		if err != nil {
			return err
		}
		if len(eps) != 0 {
			var names []string
			for _, ep := range eps {
				names = append(names, ep.Network+"/"+ep.Name)
			}
			return fmt.Errorf("h1 still lists %s", strings.Join(names, " "))
		}
		return nil
	})
	k1.mustDocker("network", "rm", "blue", "red")
	k2.mustDocker("rm", "-f", "web2", "db2")
	k2.mustDocker("network", "rm", "blue", "red")
	e.eventually(20*time.Second, "blue and red removed from vxwire on both hosts", func() error {
		for _, h := range []*host{h1, h2} {
			ns, err := e.cliNetworks(h)
			if err != nil {
				return err
			}
			for _, n := range []string{"blue", "red"} {
				if _, ok := findNetwork(ns, n); ok {
					return fmt.Errorf("%s still has network %s", h.id, n)
				}
			}
		}
		return nil
	})
	for _, d := range []*daemon{d1, d2} {
		if !d.running() {
			t.Fatalf("vxwire on %s exited: %v", d.h.id, d.err)
		}
	}
}
