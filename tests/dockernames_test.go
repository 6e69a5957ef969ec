package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDockerNameTakenOnAnotherHost: `docker run --name web` on h2, while
// h1's web holds the name on the same vxwire network, fails with a
// Docker-visible error naming h1, and dockerd and vxwire stay up; a
// --network-alias shared by both hosts' containers resolves to both.
// Before names were checked across the cluster, both runs succeeded and
// web round-robined between the two containers.
func TestDockerNameTakenOnAnotherHost(t *testing.T) {
	e := newEnv(t)
	_, h2, d1, d2, k1, k2 := e.dockerPair()
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.81.0.0/24", "names")
	}
	k1.mustDocker("run", "-d", "--name", "web", "--network", "names", "--network-alias", "pool", "--dns", "10.81.0.1", "bb:1", "sleep", "600")
	a1 := k1.containerAddr("web", "eth0")
	e.eventually(45*time.Second, "h2 lists h1's web", func() error {
		eps, err := e.cliAllEndpoints(h2)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			if ep.Network == "names" && ep.Name == "web" && ep.Host == "h1" {
				return nil
			}
		}
		return fmt.Errorf("endpoint ls --all on h2: %s", memberSummary(eps))
	})
	out, err := k2.docker("run", "-d", "--name", "web", "--network", "names", "bb:1", "sleep", "600")
	if err == nil || !strings.Contains(out, "held by host h1") {
		t.Fatalf("docker run --name web on h2 while h1 holds web: %v, want an error naming h1:\n%s", err, out)
	}
	if !k2.running() || !d1.running() || !d2.running() {
		t.Fatal("dockerd or vxwire stopped after the refused run")
	}
	// The probe: another name with the shared alias is attached.
	k2.mustDocker("run", "-d", "--name", "web-b", "--network", "names", "--network-alias", "pool", "--dns", "10.81.0.1", "bb:1", "sleep", "600")
	a2 := k2.containerAddr("web-b", "eth0")
	e.eventually(45*time.Second, "pool resolves to both hosts' containers", func() error {
		out, err := k1.docker("exec", "web", "nslookup", "pool", "10.81.0.1")
		if err != nil {
			return err
		}
		if !strings.Contains(out, a1) || !strings.Contains(out, a2) {
			return fmt.Errorf("nslookup pool: want %s and %s:\n%s", a1, a2, out)
		}
		return nil
	})
}
