package tests

// Docker Engine (Debian's docker.io, dockerd 20.10) with vxwire as its
// network and IPAM driver, on two hosts.
//
//   PFX-h1: vxwire (docker_plugin) + dockerd      PFX-h2: vxwire (docker_plugin) + dockerd
//   PFX-u1 198.18.0.1 ============ veth ============ PFX-u2 198.18.0.2
//     web1: eth0 blue (10.79.0.0/24)                   web2: eth0 blue
//           eth1 red  (10.80.0.0/24) after connect           eth1 red after connect
//
// Each dockerd runs in its host's network namespace and in a mount
// namespace of its own, where /run/docker/plugins is the directory in
// which that host's vxwire serves the plugin socket.

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// dockerPair is two hosts, each with vxwire serving the Docker plugin and
// a dockerd that uses it, with image bb:1.
func (e *env) dockerPair() (h1, h2 *host, d1, d2 *daemon, k1, k2 *dockerHost) {
	e.t.Helper()
	h1, h2 = e.twoHosts()
	k1, k2 = e.startDocker(h1), e.startDocker(h2)
	d1 = e.startDaemon(h1, e.writeConfig(h1, hostConf{peers: []*host{h2}, dockerPlug: filepath.Join(k1.plugins, "vxwire.sock")}))
	d2 = e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, dockerPlug: filepath.Join(k2.plugins, "vxwire.sock")}))
	d1.waitReady()
	d2.waitReady()
	k1.stopBeforeDaemons()
	k2.stopBeforeDaemons()
	k1.importBusybox()
	k2.importBusybox()
	return h1, h2, d1, d2, k1, k2
}

var inetRE = regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`)

// containerAddr returns the IPv4 address of ifname in container c.
func (d *dockerHost) containerAddr(c, ifname string) string {
	d.e.t.Helper()
	m := inetRE.FindStringSubmatch(d.mustDocker("exec", c, "ip", "-4", "addr", "show", ifname))
	if m == nil {
		d.e.t.Fatalf("%s on %s has no IPv4 address on %s", c, d.h.id, ifname)
	}
	return m[1]
}

// TestDockerEngine runs Docker's overlay tutorial with vxwire: blue is
// created on both hosts, a container runs on each, they ping each other
// by address, by name and by --network-alias and move 16 MiB intact; network connect red
// adds eth1 while the default route stays on eth0; docker rm -f takes the
// endpoint out of both hosts' views within a second; bad requests get a
// Docker-visible error and leave dockerd and vxwire running. Before the
// Docker plugin, `docker network create -d vxwire` failed: Docker found no
// plugin called vxwire.
func TestDockerEngine(t *testing.T) {
	e := newEnv(t)
	_, h2, d1, d2, k1, k2 := e.dockerPair()
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/24", "blue")
	}
	t0 := time.Now()
	k1.mustDocker("run", "-d", "--name", "web1", "--network", "blue", "--network-alias", "www", "--dns", "10.79.0.1", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "web2", "--network", "blue", "--dns", "10.79.0.1", "bb:1", "sleep", "600")
	t.Logf("two docker runs in %v", time.Since(t0).Round(time.Millisecond))
	a1, a2 := k1.containerAddr("web1", "eth0"), k2.containerAddr("web2", "eth0")
	if a1 == a2 {
		t.Fatalf("both containers got %s", a1)
	}
	for _, p := range []struct {
		k            *dockerHost
		from, target string
	}{{k1, "web1", a2}, {k2, "web2", a1}, {k1, "web1", "web2"}, {k2, "web2", "web1"}, {k2, "web2", "www"}} {
		// 45 s: gossip sometimes delivers a just-started host's records
		// only at the next push-pull.
		e.eventually(45*time.Second, p.from+" pings "+p.target, func() error {
			_, err := p.k.docker("exec", p.from, "ping", "-c", "1", "-W", "1", p.target)
			return err
		})
	}

	// 16 MiB from web2's httpd to web1, compared by SHA-256.
	k2.mustDocker("exec", "web2", "sh", "-c", "mkdir -p /www && head -c 16777216 /dev/urandom > /www/f && httpd -p 8080 -h /www")
	want := strings.Fields(k2.mustDocker("exec", "web2", "sha256sum", "/www/f"))[0]
	got := strings.Fields(k1.mustDocker("exec", "web1", "sh", "-c", "wget -q -O - http://web2:8080/f | sha256sum"))[0]
	if got != want {
		t.Fatalf("16 MiB over blue: sha256 %s at web1, %s at web2", got, want)
	}

	// docker network connect: eth1 on red, the default route stays.
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.80.0.0/24", "red")
	}
	k1.mustDocker("network", "connect", "red", "web1")
	k2.mustDocker("network", "connect", "red", "web2")
	r2 := k2.containerAddr("web2", "eth1")
	if routes := k1.mustDocker("exec", "web1", "ip", "-4", "route", "show", "default"); strings.Count(routes, "default") != 1 || !strings.Contains(routes, "dev eth0") {
		t.Errorf("web1 default routes after network connect: %q, want one through eth0", routes)
	}
	e.eventually(20*time.Second, "web1 pings web2 on red", func() error {
		_, err := k1.docker("exec", "web1", "ping", "-c", "1", "-W", "1", r2)
		return err
	})
	e.eventually(20*time.Second, "web1 still pings web2 on blue", func() error {
		_, err := k1.docker("exec", "web1", "ping", "-c", "1", "-W", "1", a2)
		return err
	})

	// docker rm -f: gone from h2's endpoints and from h1's names within a
	// second.
	k2.mustDocker("rm", "-f", "web2")
	t1 := time.Now()
	e.eventually(time.Second, "web2 gone from both hosts' views", func() error {
		eps, err := e.apiEndpoints(h2)
		if err != nil {
			return err
		}
		for _, ep := range eps {
			if ep.Name == "web2" {
				return fmt.Errorf("h2 still lists %s on %s", ep.Name, ep.Network)
			}
		}
		if out, err := k1.docker("exec", "web1", "nslookup", "web2", "10.79.0.1"); err == nil && strings.Contains(out, a2) {
			return fmt.Errorf("h1 still resolves web2:\n%s", out)
		}
		return nil
	})
	t.Logf("docker rm -f to gone from both views: %v", time.Since(t1).Round(time.Millisecond))

	// Bad requests: a Docker-visible error, and everything stays up.
	k1.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.81.0.0/30", "tiny")
	k1.mustDocker("run", "-d", "--name", "t1", "--network", "tiny", "bb:1", "sleep", "600")
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.82.0.0/24", "-o", "colour=blue", "bad1"}, "--opt colour"},
		{[]string{"network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/25", "bad2"}, "overlaps 10.79.0.0/24"},
		{[]string{"network", "create", "-d", "vxwire", "--subnet", "10.83.0.0/24", "bad3"}, "--ipam-driver vxwire"},
		{[]string{"run", "--rm", "--network", "tiny", "bb:1", "true"}, "no free address"},
	} {
		out, err := k1.docker(bad.args...)
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("docker %s: %v, want an error naming %q:\n%s", strings.Join(bad.args, " "), err, bad.want, out)
		}
	}
	if _, err := k1.docker("info"); err != nil || !k1.running() || !d1.running() || !d2.running() {
		t.Fatalf("after bad requests: docker info %v, dockerd running %v, vxwire h1 %v h2 %v", err, k1.running(), d1.running(), d2.running())
	}
	k1.mustDocker("rm", "-f", "t1")
	k1.mustDocker("network", "rm", "tiny")
}

// TestDockerInternal checks that a container on a network created with
// --internal reaches nothing outside the overlay, even when it adds a
// default route through the gateway itself (it has NET_ADMIN), while a
// container on an ordinary network reaches the same server through the
// gateway's egress (the probe that shows the test can fail).
//
//	PFX-h1 ── veth ── PFX-out 198.18.1.9: TCP echo (outside the overlay)
func TestDockerInternal(t *testing.T) {
	e := newEnv(t)
	h1, _, _, _, k1, k2 := e.dockerPair()
	out := e.newNS("out")
	e.must("ip", "link", "add", e.prefix+"o1", "netns", h1.name, "type", "veth", "peer", "name", "eth0", "netns", out.name)
	e.must("ip", "-n", h1.name, "addr", "add", "198.18.1.1/24", "dev", e.prefix+"o1")
	e.must("ip", "-n", h1.name, "link", "set", e.prefix+"o1", "up")
	e.must("ip", "-n", out.name, "addr", "add", "198.18.1.9/24", "dev", "eth0")
	e.must("ip", "-n", out.name, "link", "set", "eth0", "up")
	e.echoServers(out, "198.18.1.9", 7000)
	for _, k := range []*dockerHost{k1, k2} {
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.79.0.0/24", "open")
		k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--internal", "--subnet", "10.84.0.0/24", "closed")
	}
	k1.mustDocker("run", "-d", "--name", "o1", "--network", "open", "bb:1", "sleep", "600")
	k1.mustDocker("run", "-d", "--name", "i1", "--cap-add", "NET_ADMIN", "--network", "closed", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "i2", "--network", "closed", "bb:1", "sleep", "600")
	echo := "echo hello | nc -w 2 198.18.1.9 7000"
	e.eventually(20*time.Second, "o1 reaches the outside server", func() error {
		got, err := k1.docker("exec", "o1", "sh", "-c", echo)
		if err != nil || !strings.Contains(got, "hello") {
			return fmt.Errorf("%v: %q", err, got)
		}
		return nil
	})
	if routes := k1.mustDocker("exec", "i1", "ip", "-4", "route", "show", "default"); routes != "" {
		t.Errorf("a container on an internal network has a default route: %q", routes)
	}
	// The overlay itself works on the internal network.
	i2 := k2.containerAddr("i2", "eth0")
	e.eventually(20*time.Second, "i1 pings i2 across hosts", func() error {
		_, err := k1.docker("exec", "i1", "ping", "-c", "1", "-W", "1", i2)
		return err
	})
	k1.mustDocker("exec", "i1", "ip", "route", "add", "default", "via", "10.84.0.1")
	if got, err := k1.docker("exec", "i1", "sh", "-c", echo); err == nil && strings.Contains(got, "hello") {
		t.Errorf("a container on an --internal network reached 198.18.1.9 through its gateway: %q", got)
	}
}
