package tests

// docker run -p through vxwire's published ports, on dockerPair's hosts
// (docker_test.go): web runs on h1 with -p 8080:8080; h2 stands for a
// client on the underlay.

import (
	"fmt"
	"strings"
	"testing"
)

// TestDockerPublish checks that `docker run -p 8080:8080 --network blue`
// publishes through vxwire: the port answers on h1's underlay address,
// vxwire lists it as a host-mode publish, h2 does not listen, and docker
// rm takes it back.
func TestDockerPublish(t *testing.T) {
	e := newEnv(t, "curl")
	h1, h2, _, _, k1, k2 := e.dockerPair()
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/24", "blue")
	}
	k1.mustDocker("run", "-d", "--name", "web", "--network", "blue", "-p", "8080:8080", "bb:1",
		"sh", "-c", "mkdir -p /www && echo hello-from-docker > /www/index.html && httpd -f -p 8080 -h /www")
	url := "http://" + h1.addr + ":8080/"
	e.eventually(pubTimeout, "fetch "+url+" from h2", func() error {
		out, err := e.in(h2.netns, "curl", "-s", "-m", "3", url)
		if err == nil && !strings.Contains(out, "hello-from-docker") {
			return permanent(fmt.Errorf("%s answered %q", url, out))
		}
		return err
	})
	ps, err := e.cliPublishes(h1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Port != 8080 || ps[0].Mode != "host" || ps[0].Address != h1.addr+":8080" || !strings.HasSuffix(ps[0].To, ":8080") {
		t.Errorf("publish ls on h1: %+v, want 8080 in host mode on %s", ps, h1.addr)
	}
	if out, err := e.in(h1.netns, "curl", "-s", "-m", "3", "http://"+h2.addr+":8080/"); err == nil {
		t.Errorf("h2, which does not run web, answered on 8080: %q", out)
	}
	k1.mustDocker("rm", "-f", "web")
	e.eventually(pubTimeout, "docker rm unpublishes 8080", func() error {
		ps, err := e.cliPublishes(h1)
		if err != nil {
			return err
		}
		if len(ps) != 0 {
			return fmt.Errorf("publish ls on h1 after docker rm: %+v", ps)
		}
		return nil
	})
}
