package config

import (
	"strings"
	"testing"
)

// laptopText has a host endpoint (served by the daemon's own stack) and,
// on line 17, a container endpoint (a TAP in a network namespace).
const laptopText = `[host]
name = "lap"
address = "198.18.0.9"

[[network]]
name = "blue"
vni = 4200
subnet = "10.42.0.0/24"

[[endpoint]]
network = "blue"
name = "lap"

[[endpoint]]
network = "blue"
name = "web"
netns = "/run/netns/web"
`

// TestLaptopContainerEndpointNeedsLinux checks the rule on a system
// without TAP devices: the container endpoint is refused at its netns
// line, naming what works instead, while the host endpoint passes; on
// Linux the same file passes.
func TestLaptopContainerEndpointNeedsLinux(t *testing.T) {
	c, err := Parse("lap.toml", []byte(laptopText))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if errs := c.checkOS("linux"); len(errs) != 0 {
		t.Fatalf("linux refused the file: %v", asError(errs))
	}
	for _, goos := range []string{"darwin", "windows"} {
		errs := c.checkOS(goos)
		if len(errs) != 1 {
			t.Fatalf("%s: %d errors (%v), want 1 for endpoint[1]", goos, len(errs), asError(errs))
		}
		msg := errs[0].Error()
		for _, want := range []string{"lap.toml:17", "endpoint[1].netns", "need Linux", "on " + goos, "host endpoint, SOCKS5 or [[forward]]"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q lacks %q", goos, msg, want)
			}
		}
	}
}

// TestLaptopDockerPluginNeedsLinux checks that host.docker_plugin is
// refused, at its line, off Linux only.
func TestLaptopDockerPluginNeedsLinux(t *testing.T) {
	text := strings.Replace(laptopText, `address = "198.18.0.9"`, `address = "198.18.0.9"`+"\ndocker_plugin = \"/run/docker/plugins/vxwire.sock\"", 1)
	c, err := Parse("lap.toml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if errs := c.checkOS("linux"); len(errs) != 0 {
		t.Fatalf("linux refused the file: %v", asError(errs))
	}
	errs := c.checkOS("darwin")
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "lap.toml:4") || !strings.Contains(errs[0].Error(), "Docker plugin") {
		t.Fatalf("darwin: errors %v, want the docker_plugin line first and the netns endpoint", asError(errs))
	}
}
