package tests

// Docker containers resolve names on other hosts without --dns:
//
//   PFX-h1: vxwire (docker_plugin) + dockerd      PFX-h2: vxwire (docker_plugin) + dockerd
//   PFX-u1 198.18.0.1 ============ veth ============ PFX-u2 198.18.0.2
//     web1 on blue, spy on red                        web2 on blue, red2 on red
//
// No container is given --dns: Docker's resolver at 127.0.0.11 forwards
// what it does not know, from the container's namespace, to the host's
// servers, through the network's gateway.

import (
	"strings"
	"testing"
	"time"
)

// TestDockerNamesWithoutDNSFlag: web1 and web2, on blue on two hosts, ping
// each other by name with no --dns; so do spy and red2 on red (the probe
// for the attack below).
func TestDockerNamesWithoutDNSFlag(t *testing.T) {
	e := newEnv(t)
	_, _, _, _, k1, k2 := e.dockerPair()
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/24", "blue")
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.80.0.0/24", "red")
	}
	k1.mustDocker("run", "-d", "--name", "web1", "--network", "blue", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "web2", "--network", "blue", "bb:1", "sleep", "600")
	k1.mustDocker("run", "-d", "--name", "spy", "--network", "red", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "red2", "--network", "red", "bb:1", "sleep", "600")
	if rc := k1.mustDocker("exec", "web1", "cat", "/etc/resolv.conf"); !strings.Contains(rc, "127.0.0.11") {
		t.Fatalf("web1's resolv.conf does not use Docker's resolver:\n%s", rc)
	}
	for _, p := range []struct {
		k            *dockerHost
		from, target string
	}{{k1, "web1", "web2"}, {k2, "web2", "web1"}, {k1, "spy", "red2"}} {
		e.eventually(45*time.Second, p.from+" pings "+p.target+" by name without --dns", func() error {
			_, err := p.k.docker("exec", p.from, "ping", "-c", "1", "-W", "1", p.target)
			return err
		})
	}
	// The attack: spy, on red only, asks for blue's names, through Docker's
	// resolver and straight at a server outside the overlay through its
	// gateway. Neither may answer: the gateway answers in another
	// server's name only for the names of spy's own networks.
	for _, args := range [][]string{{"nslookup", "web2"}, {"nslookup", "web2", "203.0.113.53"}} {
		out, err := k1.docker(append([]string{"exec", "spy"}, args...)...)
		if err == nil || strings.Contains(out, "10.79.0.") {
			t.Errorf("spy on red resolved a name of blue (%s): %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The probe of the same path: red's own name straight at that server.
	if out, err := k1.docker("exec", "spy", "nslookup", "red2", "203.0.113.53"); err != nil || !strings.Contains(out, "10.80.0.") {
		t.Errorf("spy cannot resolve red2 through a server outside the overlay: %v\n%s", err, out)
	}
}
