package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystem is an unprivileged process with the given environment, whose
// writable directories are those under the listed prefixes.
func fakeSystem(netAdmin bool, env map[string]string, writable ...string) system {
	return system{
		netAdmin: netAdmin,
		getenv:   func(k string) string { return env[k] },
		uid:      1000,
		groups:   []int{1000},
		writable: func(dir string) error {
			for _, w := range writable {
				if strings.HasPrefix(dir, w) {
					return nil
				}
			}
			return errors.New("permission denied")
		},
	}
}

func parseRootless(t *testing.T, text string, sys system) (*Config, error) {
	t.Helper()
	c, err := Parse("lap.toml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if errs := c.loadRootless(sys); len(errs) > 0 {
		return c, asError(errs)
	}
	return c, nil
}

const lapHost = "[host]\nname = \"lap\"\naddress = \"198.18.0.9\"\n"

var userEnv = map[string]string{"HOME": "/home/u", "XDG_RUNTIME_DIR": "/run/user/1000"}

func TestRootlessChosenAndDefaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		text     string
		netAdmin bool
		want     bool
	}{
		{"no CAP_NET_ADMIN", lapHost, false, true},
		{"CAP_NET_ADMIN", lapHost, true, false},
		{"forced", lapHost + "rootless = true\n", true, true},
		{"refused", lapHost + "rootless = false\n", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseRootless(t, tc.text, fakeSystem(tc.netAdmin, userEnv, "/home/u", "/run/user/1000"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Host.Rootless != tc.want {
				t.Fatalf("Rootless = %v, want %v", c.Host.Rootless, tc.want)
			}
			wantState, wantSock := DefaultStateDir, DefaultAPISocket
			if tc.want {
				wantState, wantSock = "/home/u/.local/state/vxwire", "/run/user/1000/vxwire/vxwire.sock"
			}
			if c.Host.StateDir != wantState || c.Host.APISocket != wantSock {
				t.Errorf("state_dir %q, api_socket %q; want %q, %q", c.Host.StateDir, c.Host.APISocket, wantState, wantSock)
			}
		})
	}
	env := map[string]string{"HOME": "/home/u", "XDG_STATE_HOME": "/s", "XDG_RUNTIME_DIR": "/r"}
	c, err := parseRootless(t, lapHost+"private_key_file = \"/home/u/k\"\nwg_port = 51820\n", fakeSystem(false, env, "/s", "/r"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.StateDir != "/s/vxwire" || c.Host.UAPIDir != "/r/wireguard" {
		t.Errorf("state_dir %q, uapi dir %q; want /s/vxwire, /r/wireguard", c.Host.StateDir, c.Host.UAPIDir)
	}
}

// TestRootlessRefused checks each thing rootless mode cannot do: the error
// names the line of the key and what is missing.
func TestRootlessRefused(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		env        map[string]string
		want       []string
	}{
		{"wireguard port", lapHost + "private_key_file = \"/home/u/k\"\nwg_port = 500\n", userEnv,
			[]string{"lap.toml:5: host.wg_port: port 500 is privileged", "CAP_NET_BIND_SERVICE", "from 1024 up"}},
		{"vxlan port", lapHost + "port = 789\n", userEnv, []string{"lap.toml:4: host.port: port 789 is privileged"}},
		{"gossip and raft", lapHost + "gossip_port = 946\nraft_port = 948\n", userEnv,
			[]string{"lap.toml:4: host.gossip_port: port 946", "lap.toml:5: host.raft_port: port 948"}},
		{"metrics", lapHost + "metrics = \"127.0.0.1:90\"\n", userEnv, []string{"lap.toml:4: host.metrics: port 90 is privileged"}},
		{"/var/run socket", lapHost + "api_socket = \"/var/run/vxwire/v.sock\"\n", userEnv,
			[]string{"lap.toml:4: host.api_socket: rootless mode (uid 1000) cannot write /var/run/vxwire"}},
		{"/var/lib state", lapHost + "state_dir = \"/var/lib/vxwire\"\n", userEnv,
			[]string{"lap.toml:4: host.state_dir: rootless mode (uid 1000) cannot write /var/lib/vxwire"}},
		{"no runtime dir", lapHost, map[string]string{"HOME": "/home/u"},
			[]string{"host.api_socket: rootless mode (uid 1000) puts the API socket in $XDG_RUNTIME_DIR, which is not set"}},
		{"docker plugin", lapHost + "docker_plugin = \"/home/u/d.sock\"\n", userEnv,
			[]string{"lap.toml:4: host.docker_plugin", "CAP_NET_ADMIN"}},
		{"api group", lapHost + "api_group = \"wheel\"\n", userEnv,
			[]string{"lap.toml:4: host.api_group", "not in wheel"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("lap.toml", []byte(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			if c.Host.APIGroup != "" {
				c.Host.APIGID = 10 // as Load looks it up
			}
			sys := fakeSystem(false, tc.env, "/home/u", "/run/user/1000")
			if errs := c.loadRootless(sys); len(errs) > 0 {
				err = asError(errs)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	// A group the user is in is fine.
	c, err := Parse("lap.toml", []byte(lapHost+"api_group = \"me\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c.Host.APIGID = 1000
	if errs := c.loadRootless(fakeSystem(false, userEnv, "/home/u", "/run/user/1000")); len(errs) > 0 {
		t.Errorf("the user's own group: %v", asError(errs))
	}
	// The same ports are fine for a privileged daemon.
	if _, err := parseRootless(t, lapHost+"port = 789\nmetrics = \"127.0.0.1:90\"\n", fakeSystem(true, userEnv)); err != nil {
		t.Errorf("privileged: %v", err)
	}
}

func TestHasCap(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   bool
	}{
		{"Name:\tx\nCapEff:\t000001ffffffffff\n", true},
		{"CapEff:\t0000000000001000\n", true},
		{"CapEff:\t0000000000000000\n", false},
		{"CapEff:\tzz\n", false},
		{"", false},
	} {
		if got := HasCap([]byte(tc.status), CapNetAdmin); got != tc.want {
			t.Errorf("HasCap(%q) = %v, want %v", tc.status, got, tc.want)
		}
	}
}

func TestWritableDir(t *testing.T) {
	dir := t.TempDir()
	if err := writableDir(filepath.Join(dir, "a", "b")); err != nil {
		t.Errorf("a new directory under a writable one: %v", err)
	}
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writableDir(filepath.Join(f, "x")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("under a file: %v", err)
	}
}
