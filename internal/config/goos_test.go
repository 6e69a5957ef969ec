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

// TestLaptopRuntimeDir checks that off Linux an unset XDG_RUNTIME_DIR
// reads as the user's temporary directory, so rootless mode finds a home
// for the API socket, while Linux keeps requiring it.
func TestLaptopRuntimeDir(t *testing.T) {
	env := map[string]string{"HOME": "/Users/ann"}
	getenv := func(k string) string { return env[k] }
	if v := laptopEnv("linux", getenv, "/tmp/ann")("XDG_RUNTIME_DIR"); v != "" {
		t.Fatalf("linux: XDG_RUNTIME_DIR %q, want unset", v)
	}
	mac := laptopEnv("darwin", getenv, "/var/folders/x/T")
	if v := mac("XDG_RUNTIME_DIR"); v != "/var/folders/x/T" {
		t.Fatalf("darwin: XDG_RUNTIME_DIR %q, want the temporary directory", v)
	}
	if v := mac("HOME"); v != "/Users/ann" {
		t.Fatalf("darwin: HOME %q, want it unchanged", v)
	}
	env["XDG_RUNTIME_DIR"] = "/run/user/501"
	if v := mac("XDG_RUNTIME_DIR"); v != "/run/user/501" {
		t.Fatalf("darwin: XDG_RUNTIME_DIR %q, want the one set", v)
	}
	_, err := parseRootless(t, "[host]\nname = \"lap\"\naddress = \"198.18.0.9\"\n",
		fakeSystem(false, map[string]string{"HOME": "/Users/ann"}, "/Users/ann", "/var/folders"))
	if err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") {
		t.Fatalf("linux rules without XDG_RUNTIME_DIR: %v, want the api_socket error", err)
	}
	sys := fakeSystem(false, map[string]string{"HOME": "/Users/ann"}, "/Users/ann", "/var/folders")
	sys.getenv = laptopEnv("darwin", sys.getenv, "/var/folders/x/T")
	c, err := parseRootless(t, "[host]\nname = \"lap\"\naddress = \"198.18.0.9\"\n", sys)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.APISocket != "/var/folders/x/T/vxwire/vxwire.sock" {
		t.Fatalf("darwin api_socket %q", c.Host.APISocket)
	}
}

// TestLaptopAPIGroupOnWindows checks that host.api_group is refused, at
// its line, on Windows only.
func TestLaptopAPIGroupOnWindows(t *testing.T) {
	text := strings.Replace(laptopText, "[[endpoint]]\nnetwork = \"blue\"\nname = \"web\"\nnetns = \"/run/netns/web\"\n", "", 1)
	text = strings.Replace(text, `address = "198.18.0.9"`, `address = "198.18.0.9"`+"\napi_group = \"staff\"", 1)
	c, err := Parse("lap.toml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, goos := range []string{"linux", "darwin"} {
		if errs := c.checkOS(goos); len(errs) != 0 {
			t.Fatalf("%s refused the file: %v", goos, asError(errs))
		}
	}
	errs := c.checkOS("windows")
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "lap.toml:4: host.api_group") {
		t.Fatalf("windows: errors %v, want one at host.api_group's line", asError(errs))
	}
}
