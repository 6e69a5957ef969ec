package tests

//  PFX-h1 198.18.0.1/24 (PFX-u1) ====== veth ====== PFX-h2
//  PFX-c1 (empty)
//
//  `vxwire config check` and `vxwire up` run inside PFX-h1 on broken files.

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// badLine marks the line a broken config's error must point at.
const badLine = "# <- error here"

// configCase is a config file with one mistake, on the line marked with
// badLine; @NETNS@ stands for an existing container namespace.
type configCase struct {
	name  string
	field string // field path the error must name
	text  string
}

var configCases = []configCase{
	{"unknown-key", "host.colour", `[host]
name = "h1"
address = "198.18.0.1"
colour = "blue" ` + badLine + `
@REST@`},
	{"bad-cidr", "network[0].subnet", `@HOST@
[[network]]
name = "blue"
vni = 256
subnet = "10.77.0.0/33" ` + badLine + `
gateway = "10.77.0.1"
`},
	{"gateway-outside-subnet", "network[0].gateway", `@HOST@
[[network]]
name = "blue"
vni = 256
subnet = "10.77.0.0/24"
gateway = "10.78.0.1" ` + badLine + `
`},
	{"duplicate-vni", "network[1].vni", `@HOST@
@BLUE@
[[network]]
name = "red"
vni = 256 ` + badLine + `
subnet = "10.78.0.0/24"
`},
	{"duplicate-name", "network[1].name", `@HOST@
@BLUE@
[[network]]
name = "blue" ` + badLine + `
vni = 257
subnet = "10.78.0.0/24"
`},
	{"address-outside-subnet", "endpoint[0].address", `@HOST@
@BLUE@
[[endpoint]]
network = "blue"
name = "web"
netns = "@NETNS@"
address = "10.99.0.10" ` + badLine + `
`},
	{"missing-netns", "endpoint[0].netns", `@HOST@
@BLUE@
[[endpoint]]
network = "blue"
name = "web"
netns = "@NETNS@-missing" ` + badLine + `
address = "10.77.0.10"
`},
}

// TestBadConfig checks that broken config files are refused with an error
// that names the file, the line and the field, by `config check` and by
// `up`, and that a good file passes.
func TestBadConfig(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	c1 := e.container("c1")
	expand := strings.NewReplacer(
		"@HOST@", "[host]\nname = \"h1\"\naddress = \"198.18.0.1\"\nstate_dir = \""+filepath.Join(e.dir, "state")+
			"\"\napi_socket = \""+filepath.Join(e.dir, "h1.sock")+"\"\n",
		"@REST@", "state_dir = \""+filepath.Join(e.dir, "state")+"\"\napi_socket = \""+filepath.Join(e.dir, "h1.sock")+"\"\n",
		"@BLUE@", "[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\ngateway = \"10.77.0.1\"\n",
		"@NETNS@", c1.path(),
	)
	check := func(file string) (string, error) {
		_, stderr, err := run(cmdTimeout, "ip", "netns", "exec", h1.name, vxwireBin, "config", "check", "-c", file)
		return stderr, err
	}

	good := e.file("good.toml", expand.Replace("@HOST@\n@BLUE@\n[[endpoint]]\nnetwork = \"blue\"\nname = \"web\"\nnetns = \"@NETNS@\"\naddress = \"10.77.0.10\"\n"))
	if stderr, err := check(good); err != nil {
		t.Fatalf("config check of a good file: %v\n%s", err, stderr)
	}

	for _, c := range configCases {
		t.Run(c.name, func(t *testing.T) {
			text := expand.Replace(c.text)
			name := c.name + ".toml"
			file := e.file(name, text)
			want := fmt.Sprintf("%s:%d: %s", name, markedLine(t, text), c.field)

			stderr, err := check(file)
			if err == nil {
				t.Fatalf("config check of %s exited 0, want an error naming %q:\n%s", name, want, text)
			}
			if !strings.Contains(stderr, want) {
				t.Errorf("config check of %s: stderr does not name %q (FILE:LINE: FIELD):\n%s", name, want, stderr)
			}

			out, err := e.upExit(h1, file, 20*time.Second)
			switch {
			case errors.Is(err, errTimedOut):
				t.Errorf("vxwire up with %s kept running", name)
			case err == nil:
				t.Errorf("vxwire up with %s exited 0", name)
			case !strings.Contains(out, want):
				t.Errorf("vxwire up with %s: output does not name %q:\n%s", name, want, out)
			}
		})
	}
	if out, err := e.in(c1, "ip", "link", "show", "eth0"); err == nil {
		t.Errorf("a daemon refusing its config left a device in the container:\n%s", out)
	}
}

// markedLine returns the 1-based number of the line of text marked with
// badLine.
func markedLine(t *testing.T, text string) int {
	t.Helper()
	for i, line := range strings.Split(text, "\n") {
		if strings.Contains(line, badLine) {
			return i + 1
		}
	}
	t.Fatalf("no line marked %q", badLine)
	return 0
}
