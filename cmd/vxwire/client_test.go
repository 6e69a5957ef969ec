package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
)

// fakeDaemon serves an in-memory backend on a temporary socket, with one
// network from the config file ("blue") and one peer.
func fakeDaemon(t *testing.T) (string, *apitest.Backend) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "vxwire.sock")
	ln, err := api.Listen(sock, -1)
	if err != nil {
		t.Fatal(err)
	}
	b := apitest.New()
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", MTU: 1450, Egress: true})
	b.SetStatus(api.Status{Host: "h1", Address: "198.18.0.1:4789",
		Networks: []api.NetworkStatus{{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24"}},
		Peers: []api.PeerStatus{{Name: "h2", Address: "198.18.0.2:4789", Counters: api.Counters{RxFrames: 7},
			WireGuard: &api.WireGuardPeer{KeyEpoch: 3}}}})
	srv := api.Serve(ln, b, safe.Reporter{L: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { srv.Close() })
	return sock, b
}

// runCLI runs one command line and returns its exit code, stdout and
// stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestClientCommands runs each step against one fake daemon, in order:
// later steps see what earlier ones made.
func TestClientCommands(t *testing.T) {
	sock, b := fakeDaemon(t)
	b.AddRemote(api.Endpoint{Network: "red", Name: "api", Address: "10.88.0.77/24", MAC: "02:00:00:00:00:77", Host: "h2"})
	steps := []struct {
		name    string
		args    []string
		code    int
		out     []string // substrings of stdout
		errText string   // substring of stderr
	}{
		{"create", []string{"network", "create", "--subnet", "10.88.0.0/24", "--opt", "encrypted", "--egress=false", "red"},
			exitOK, []string{"red\n"}, ""},
		{"create flags after name", []string{"network", "create", "green", "--subnet", "10.99.0.0/24", "--vni", "4000", "--mtu", "1400", "--gateway", "10.99.0.254"},
			exitOK, []string{"green\n"}, ""},
		{"create json", []string{"network", "create", "--json", "--subnet=10.66.0.0/16", "black"},
			exitOK, []string{`"name": "black"`, `"vni": 258`, `"egress": true`}, ""},
		{"create duplicate", []string{"network", "create", "--subnet", "10.5.0.0/24", "red"},
			exitConflict, nil, `network "red" already exists`},
		{"create taken vni", []string{"network", "create", "--subnet", "10.5.0.0/24", "--vni", "256", "white"},
			exitConflict, nil, `vni 256 is used by network "blue"`},
		{"ls", []string{"network", "ls"},
			exitOK, []string{"NAME", "ENCRYPTED", "red   ", "10.88.0.0/24", "green", "4000", "10.99.0.254", "config"}, ""},
		{"inspect", []string{"network", "inspect", "red"},
			exitOK, []string{"name:      red", "encrypted: yes", "egress:    no", "source:    api"}, ""},
		{"inspect unknown", []string{"network", "inspect", "purple"}, exitNotFound, nil, `network "purple": not found`},
		{"attach", []string{"attach", "--network", "red", "--netns", "/run/netns/web", "--alias", "www", "--alias", "w", "--container-id", "c1"},
			exitOK, []string{"web", "10.88.0.2/24", "www,w", "c1", "eth0"}, ""},
		{"attach json", []string{"attach", "--json", "--network", "red", "--netns", "/proc/42/ns/net", "--name", "db", "--ip", "10.88.0.9", "--mac", "02:AA:00:00:00:09", "--ifname", "eth1"},
			exitOK, []string{`"address": "10.88.0.9/24"`, `"mac": "02:aa:00:00:00:09"`, `"ifname": "eth1"`}, ""},
		{"attach taken name", []string{"attach", "--network", "red", "--netns", "/run/netns/web"}, exitConflict, nil, `name "web" is taken`},
		{"attach unknown network", []string{"attach", "--network", "purple", "--netns", "/run/netns/x"}, exitNotFound, nil, "purple"},
		{"attach address outside", []string{"attach", "--network", "red", "--netns", "/run/netns/x", "--ip", "10.1.0.1"}, exitFail, nil, "is outside subnet 10.88.0.0/24"},
		{"endpoint ls", []string{"endpoint", "ls"}, exitOK, []string{"NETWORK", "web", "db", "/proc/42/ns/net"}, ""},
		{"endpoint ls filtered", []string{"endpoint", "ls", "--network", "blue", "--json"}, exitOK, []string{"[]"}, ""},
		{"attach name held by another host", []string{"attach", "--network", "red", "--netns", "/run/netns/x", "--name", "api"},
			exitConflict, nil, `on network "red" is held by host h2`},
		{"endpoint ls all", []string{"endpoint", "ls", "--all"}, exitOK, []string{"HOST", "api", "h2", "10.88.0.77/24", "gossip", "web", "db"}, ""},
		{"endpoint ls all json", []string{"endpoint", "ls", "--all", "--json"}, exitOK, []string{`"host": "h2"`, `"source": "gossip"`}, ""},
		{"inspect members", []string{"network", "inspect", "red"}, exitOK, []string{"members (every host):", "api", "10.88.0.77/24", "02:00:00:00:00:77", "h2"}, ""},
		{"inspect members json", []string{"network", "inspect", "--json", "red"}, exitOK, []string{`"members": [`, `"host": "h2"`}, ""},
		{"rm in use", []string{"network", "rm", "red"}, exitConflict, nil, "has endpoints attached"},
		{"rm config network", []string{"network", "rm", "blue"}, exitFail, nil, "comes from the config file"},
		{"rm unknown", []string{"network", "rm", "purple"}, exitNotFound, nil, "purple"},
		{"detach by name", []string{"detach", "--network", "red", "--name", "db"}, exitOK, nil, ""},
		{"detach by container", []string{"detach", "--container-id", "c1"}, exitOK, nil, ""},
		{"detach again", []string{"detach", "--container-id", "c1"}, exitOK, nil, ""},
		{"rm", []string{"network", "rm", "red"}, exitOK, []string{"red\n"}, ""},
		{"peers", []string{"peers"}, exitOK, []string{"PEER", "h2", "198.18.0.2:4789", "never", "3"}, ""},
		{"peers json", []string{"peers", "--json"}, exitOK, []string{`"name": "h2"`, `"key_epoch": 3`}, ""},
		{"status", []string{"status"}, exitOK, []string{"host h1 on 198.18.0.1:4789", "blue"}, ""},
		{"status json", []string{"status", "--json"}, exitOK, []string{`"host": "h1"`}, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, errText := runCLI(append(s.args, "--socket", sock)...)
			if code != s.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, s.code, errText)
			}
			for _, w := range s.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errText, s.errText) {
				t.Errorf("stderr %q does not contain %q", errText, s.errText)
			}
			if s.code == exitOK && errText != "" {
				t.Errorf("stderr %q on success", errText)
			}
		})
	}
}

func TestJSONOutputDecodes(t *testing.T) {
	sock, _ := fakeDaemon(t)
	_, out, _ := runCLI("network", "ls", "--json", "--socket", sock)
	var ns []api.Network
	if err := json.Unmarshal([]byte(out), &ns); err != nil || len(ns) != 1 || ns[0].Name != "blue" {
		t.Fatalf("network ls --json: %q: %+v, %v", out, ns, err)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		errText string
	}{
		{"network alone", []string{"network"}, "vxwire network create|ls|inspect|rm"},
		{"network unknown", []string{"network", "frob"}, `unknown command "network frob"`},
		{"create without name", []string{"network", "create", "--subnet", "10.0.0.0/24"}, "network create needs NAME"},
		{"create two names", []string{"network", "create", "--subnet", "10.0.0.0/24", "a", "b"}, `unexpected argument "b"`},
		{"create without subnet", []string{"network", "create", "red"}, "network create needs --subnet CIDR"},
		{"create bad subnet", []string{"network", "create", "--subnet", "10.0.0.0/33", "red"}, `--subnet: "10.0.0.0/33" is not a valid IPv4 prefix`},
		{"create v6 subnet", []string{"network", "create", "--subnet", "fd00::/64", "red"}, "--subnet"},
		{"create bad gateway", []string{"network", "create", "--subnet", "10.0.0.0/24", "--gateway", "x", "red"}, `--gateway: "x" is not an IPv4 address`},
		{"create gateway outside", []string{"network", "create", "--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1", "red"}, "--gateway: 10.1.0.1 is outside subnet 10.0.0.0/24"},
		{"create vni text", []string{"network", "create", "--subnet", "10.0.0.0/24", "--vni", "blue", "red"}, "-vni"},
		{"create vni too big", []string{"network", "create", "--subnet", "10.0.0.0/24", "--vni", "16777216", "red"}, "--vni: vni 16777216 is out of range 256..16777215"},
		{"create vni too small", []string{"network", "create", "--subnet", "10.0.0.0/24", "--vni", "100", "red"}, "--vni: vni 100 is out of range 256..16777215"},
		{"create mtu too big", []string{"network", "create", "--subnet", "10.0.0.0/24", "--mtu", "60000", "red"}, "--mtu: mtu 60000 is out of range"},
		{"attach bad ifname", []string{"attach", "--network", "blue", "--netns", "/proc/self/ns/net", "--ifname", "a/b"}, "--ifname"},
		{"create negative vni", []string{"network", "create", "--subnet", "10.0.0.0/24", "--vni", "-1", "red"}, "-vni"},
		{"create bad mtu", []string{"network", "create", "--subnet", "10.0.0.0/24", "--mtu", "20", "red"}, "--mtu: mtu 20 is out of range"},
		{"create unknown opt", []string{"network", "create", "--subnet", "10.0.0.0/24", "--opt", "fast", "red"}, `--opt "fast": unknown option`},
		{"create bad opt value", []string{"network", "create", "--subnet", "10.0.0.0/24", "--opt", "encrypted=maybe", "red"}, `--opt "encrypted=maybe"`},
		{"create bad egress", []string{"network", "create", "--subnet", "10.0.0.0/24", "--egress=sometimes", "red"}, "-egress"},
		{"create unknown flag", []string{"network", "create", "--colour", "red"}, "flag provided but not defined: -colour"},
		{"create flag without value", []string{"network", "create", "red", "--subnet"}, "flag needs an argument: -subnet"},
		{"ls extra", []string{"network", "ls", "red"}, `unexpected argument "red"`},
		{"inspect without name", []string{"network", "inspect"}, "network inspect needs NAME"},
		{"rm without name", []string{"network", "rm"}, "network rm needs NAME"},
		{"attach without network", []string{"attach", "--netns", "/run/netns/a"}, "attach needs --network NAME"},
		{"attach without netns", []string{"attach", "--network", "blue"}, "attach needs --netns PATH"},
		{"attach netns without base", []string{"attach", "--network", "blue", "--netns", "/"}, "give --name"},
		{"attach bad ip", []string{"attach", "--network", "blue", "--netns", "/n/a", "--ip", "10.0.0.1/24"}, `--ip: "10.0.0.1/24" is not an IPv4 address without a prefix length`},
		{"attach bad mac", []string{"attach", "--network", "blue", "--netns", "/n/a", "--mac", "01:00:5e:00:00:01"}, `--mac: 01:00:5e:00:00:01 is a multicast address`},
		{"attach bad ifname", []string{"attach", "--network", "blue", "--netns", "/n/a", "--ifname", "a-very-long-ifname"}, "--ifname"},
		{"attach empty alias", []string{"attach", "--network", "blue", "--netns", "/n/a", "--alias", ""}, "-alias"},
		{"attach positional", []string{"attach", "web", "--network", "blue", "--netns", "/n/a"}, `unexpected argument "web"`},
		{"detach nothing", []string{"detach"}, "detach needs --network NAME --name N, or --container-id ID"},
		{"detach name only", []string{"detach", "--name", "web"}, "detach needs --network NAME --name N"},
		{"detach both", []string{"detach", "--name", "web", "--container-id", "c1"}, "exclude each other"},
		{"detach ifname alone", []string{"detach", "--network", "blue", "--name", "web", "--ifname", "eth0"}, "--ifname goes with --container-id"},
		{"endpoint alone", []string{"endpoint"}, "vxwire endpoint ls"},
		{"endpoint flag first", []string{"endpoint", "--json"}, "vxwire endpoint ls"},
		{"network flag first", []string{"network", "--json", "ls"}, "vxwire network create|ls|inspect|rm"},
		{"endpoint unknown", []string{"endpoint", "rm"}, `unknown command "endpoint rm"`},
		{"peers extra", []string{"peers", "h2"}, `unexpected argument "h2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(api.SocketEnv, "/nonexistent/vxwire.sock")
			code, out, errText := runCLI(tt.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", code, exitUsage, errText)
			}
			if !strings.Contains(errText, tt.errText) || !strings.HasPrefix(errText, "vxwire: ") {
				t.Fatalf("stderr %q does not mention %q", errText, tt.errText)
			}
			if out != "" || strings.Contains(errText, "goroutine") {
				t.Fatalf("stdout %q, stderr %q", out, errText)
			}
		})
	}
}

// TestSocketPrecedence checks --socket, then -c FILE, then
// VXWIRE_SOCKET, then the default.
func TestSocketPrecedence(t *testing.T) {
	sock, _ := fakeDaemon(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "h1.toml")
	os.WriteFile(cfg, []byte("[host]\nname = \"h1\"\naddress = \"198.18.0.1\"\napi_socket = \""+sock+"\"\n"), 0o600)
	badCfg := filepath.Join(dir, "bad.toml")
	os.WriteFile(badCfg, []byte("[host]\nname = \"h1\"\naddress = \"198.18.0.1\"\napi_socket = \"/nonexistent/c.sock\"\n"), 0o600)
	tests := []struct {
		name string
		env  string
		args []string
		code int
	}{
		{"flag beats file and env", "/nonexistent/env.sock", []string{"--socket", sock, "-c", badCfg}, exitOK},
		{"file beats env", "/nonexistent/env.sock", []string{"-c", cfg}, exitOK},
		{"file used", "", []string{"-c", badCfg}, exitNoConn},
		{"env used", sock, nil, exitOK},
		{"bad env", "/nonexistent/env.sock", nil, exitNoConn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(api.SocketEnv, tt.env)
			code, _, errText := runCLI(append([]string{"network", "ls"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errText)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		code, _, errText := runCLI("peers", "-c", filepath.Join(dir, "none.toml"))
		if code != exitFail || !strings.Contains(errText, "none.toml") {
			t.Fatalf("exit %d, stderr %q", code, errText)
		}
	})
}

func TestUsageDocumentsExitCodes(t *testing.T) {
	_, out, _ := runCLI("help")
	for _, w := range []string{"3  the daemon could not be reached", "4  not found", "5  conflict", "network create", "attach", "detach", "endpoint ls", "peers"} {
		if !strings.Contains(out, w) {
			t.Errorf("usage does not mention %q", w)
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		subnet  string
		json    bool
		wantPos []string
	}{
		{[]string{"red"}, "", false, []string{"red"}},
		{[]string{"--subnet", "s", "red"}, "s", false, []string{"red"}},
		{[]string{"red", "--subnet", "s", "--json"}, "s", true, []string{"red"}},
		{[]string{"--json", "red", "--subnet=s", "blue"}, "s", true, []string{"red", "blue"}},
		{[]string{"--subnet", "s", "--", "--json", "x"}, "s", false, []string{"--json", "x"}},
		{[]string{"red", "--", "-x"}, "", false, []string{"red", "-x"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := newFlags("test")
			subnet := fs.String("subnet", "", "")
			asJSON := fs.Bool("json", false, "")
			pos, err := parseArgs(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if *subnet != tt.subnet || *asJSON != tt.json || strings.Join(pos, "|") != strings.Join(tt.wantPos, "|") {
				t.Fatalf("subnet %q json %v pos %q", *subnet, *asJSON, pos)
			}
		})
	}
}
