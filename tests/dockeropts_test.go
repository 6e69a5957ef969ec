package tests

// The options of docker network create and docker run that the vxwire
// driver takes, on dockerPair's hosts (docker_test.go).

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDockerNetworkOptions checks, against a real Docker Engine on two
// hosts, that --gateway, --opt com.docker.network.driver.mtu and --ip
// reach the container: eth0 has the MTU and the address asked for, and its default route goes through the gateway asked
// for, which answers a ping. Once h2 has learnt the network, a network
// of that name created on h2 with another subnet gets no container: docker
// run is refused with an error naming the subnet the network has, and
// removing it leaves h1's network alone. Created again with the same
// subnet it joins: o1 on h1 pings o2 on h2.
func TestDockerNetworkOptions(t *testing.T) {
	e := newEnv(t)
	h1, h2, _, _, k1, k2 := e.dockerPair()
	const (
		gw = "10.87.0.254"
		ip = "10.87.0.50"
	)
	create := func(k *dockerHost, subnet, gw string) (string, error) {
		return k.docker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", subnet,
			"--gateway", gw, "-o", "com.docker.network.driver.mtu=1400", "opts")
	}
	if out, err := create(k1, "10.87.0.0/24", gw); err != nil {
		t.Fatalf("network create on h1: %v\n%s", err, out)
	}
	e.eventually(20*time.Second, "h2 lists opts from h1", func() error {
		ns, err := e.cliNetworks(h2)
		if err != nil {
			return err
		}
		if n, ok := findNetwork(ns, "opts"); !ok || n.Subnet != "10.87.0.0/24" {
			return fmt.Errorf("h2's networks: %+v", ns)
		}
		return nil
	})
	k1.mustDocker("run", "-d", "--name", "o1", "--network", "opts", "--ip", ip, "bb:1", "sleep", "600")
	// Docker's CreateNetwork does not carry the network's name, so the
	// clash shows at the first container, with the reason.
	k2.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.88.0.0/24", "opts")
	if out, err := k2.docker("run", "--rm", "--network", "opts", "bb:1", "true"); err == nil || !strings.Contains(out, "has subnet 10.87.0.0/24") {
		t.Errorf("docker run on opts created on h2 with another subnet: %v, want an error naming its subnet 10.87.0.0/24:\n%s", err, out)
	}
	k2.mustDocker("network", "rm", "opts")
	for _, h := range []*host{h1, h2} {
		ns, err := e.cliNetworks(h)
		if n, ok := findNetwork(ns, "opts"); err != nil || !ok || n.Subnet != "10.87.0.0/24" {
			t.Fatalf("after docker network rm of the clashing opts on h2, %s's networks: %+v (%v), want opts 10.87.0.0/24", h.id, ns, err)
		}
	}
	if out, err := create(k2, "10.87.0.0/24", gw); err != nil {
		t.Fatalf("network create on h2 with opts' own subnet: %v\n%s", err, out)
	}
	k2.mustDocker("run", "-d", "--name", "o2", "--network", "opts", "bb:1", "sleep", "600")

	link := k1.mustDocker("exec", "o1", "ip", "-o", "link", "show", "eth0")
	if !strings.Contains(link, " mtu 1400 ") {
		t.Errorf("o1's eth0: %q, want mtu 1400", link)
	}
	if got := k1.containerAddr("o1", "eth0"); got != ip {
		t.Errorf("o1's eth0 has %s, want --ip %s", got, ip)
	}
	if routes := k1.mustDocker("exec", "o1", "ip", "-4", "route", "show", "default"); !strings.Contains(routes, "default via "+gw+" dev eth0") {
		t.Errorf("o1's default route: %q, want via the gateway %s on eth0", routes, gw)
	}
	e.eventually(30*time.Second, "o1 pings its gateway", func() error {
		_, err := k1.docker("exec", "o1", "ping", "-c", "1", "-W", "1", gw)
		return err
	})
	a2 := k2.containerAddr("o2", "eth0")
	e.eventually(45*time.Second, "o1 pings o2 across the hosts", func() error {
		_, err := k1.docker("exec", "o1", "ping", "-c", "1", "-W", "1", a2)
		return err
	})
}
