package resolver

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// runTool runs an installed DNS client with a 10 s bound, skipping the
// test when it is not installed.
func runTool(t *testing.T, tool string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian packages dnsutils, knot-dnsutils)", tool)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	return string(out)
}

// TestInterop queries a loopback server with dig and kdig.
func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	names, cfg := bigService(100)
	ts := startServer(t, names, cfg)
	host, port, _ := net.SplitHostPort(ts.addr)
	lines := func(s string) []string {
		var out []string
		for l := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, ";") {
				out = append(out, l)
			}
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name  string
		tool  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"dig short", "dig", []string{"web", "+short"}, func(t *testing.T, out string) {
			if got := lines(out); !slices.Equal(got, []string{"10.77.0.2"}) {
				t.Errorf("got %q", out)
			}
		}},
		{"dig qualified", "dig", []string{"WEB.net1.", "+short"}, func(t *testing.T, out string) {
			if got := lines(out); !slices.Equal(got, []string{"10.77.0.2"}) {
				t.Errorf("got %q", out)
			}
		}},
		{"dig service", "dig", []string{"api", "+short"}, func(t *testing.T, out string) {
			if got := lines(out); !slices.Equal(got, []string{"10.77.0.10", "10.77.0.11", "10.77.0.12"}) {
				t.Errorf("got %q", out)
			}
		}},
		{"dig nxdomain", "dig", []string{"nope.net1"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, " aa ") {
				t.Errorf("got %q", out)
			}
		}},
		{"dig nodata", "dig", []string{"web", "AAAA"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "ANSWER: 0") {
				t.Errorf("got %q", out)
			}
		}},
		{"dig ptr", "dig", []string{"-x", "10.77.0.3", "+short"}, func(t *testing.T, out string) {
			if got := lines(out); !slices.Equal(got, []string{"db.net1."}) {
				t.Errorf("got %q", out)
			}
		}},
		{"dig refused", "dig", []string{"example.com"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "status: REFUSED") {
				t.Errorf("got %q", out)
			}
		}},
		// dig retries over TCP on TC and so gets all 100.
		{"dig udp falls back to tcp", "dig", []string{"big", "+short"}, func(t *testing.T, out string) {
			if n := len(lines(out)); n != 100 {
				t.Errorf("%d addresses", n)
			}
		}},
		{"dig tcp", "dig", []string{"big", "+tcp", "+short"}, func(t *testing.T, out string) {
			if n := len(lines(out)); n != 100 {
				t.Errorf("%d addresses", n)
			}
		}},
		{"dig ignore tc", "dig", []string{"big", "+ignore", "+noedns", "+bufsize=512"}, func(t *testing.T, out string) {
			if !strings.Contains(out, " tc ") {
				t.Errorf("no tc flag: %q", out)
			}
		}},
		{"kdig", "kdig", []string{"web.net1", "+short"}, func(t *testing.T, out string) {
			if got := lines(out); !slices.Equal(got, []string{"10.77.0.2"}) {
				t.Errorf("got %q", out)
			}
		}},
		{"kdig tcp", "kdig", []string{"+tcp", "big", "+short"}, func(t *testing.T, out string) {
			if n := len(lines(out)); n != 100 {
				t.Errorf("%d addresses", n)
			}
		}},
		{"kdig edns", "kdig", []string{"+edns=0", "+bufsize=1232", "api"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "EDNS PSEUDOSECTION") || !strings.Contains(out, "NOERROR") {
				t.Errorf("got %q", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, tt.args...)
			if tt.tool == "kdig" {
				args = append([]string{"@" + host, "-p", port, "+time=2", "+retry=0"}, tt.args...)
			}
			out := runTool(t, tt.tool, args...)
			t.Log(out)
			tt.check(t, out)
		})
	}
}
