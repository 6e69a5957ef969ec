package tests

// Cluster-wide views and names unique across the cluster:
//
//   PFX-h1 (vxwire, h1.sock)                    PFX-h2 (vxwire, h2.sock)
//   PFX-u1 198.18.0.1/24 ======= veth ======= PFX-u2 198.18.0.2/24
//     c1 (config, 10.77.0.10), w1 (attach)        c2 (config, 10.77.0.20), w2, w3 (attach)
//
//   network blue (10.77.0.0/24) on both hosts.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// cliMembers returns `vxwire network inspect NAME --json`'s members on h.
func (e *env) cliMembers(h *host, network string) ([]api.Endpoint, error) {
	so, se, code := vx("network", "inspect", "--socket", e.socket(h), "--json", network)
	if code != 0 {
		return nil, fmt.Errorf("vxwire network inspect: exit code %d\n%s%s", code, so, se)
	}
	var n api.Network
	if err := json.Unmarshal([]byte(so), &n); err != nil {
		return nil, permanent(fmt.Errorf("vxwire network inspect --json: %w\n%s", err, so))
	}
	return n.Members, nil
}

// cliAllEndpoints returns `vxwire endpoint ls --all --json` on h.
func (e *env) cliAllEndpoints(h *host) ([]api.Endpoint, error) {
	so, se, code := vx("endpoint", "ls", "--socket", e.socket(h), "--all", "--json")
	if code != 0 {
		return nil, fmt.Errorf("vxwire endpoint ls --all: exit code %d\n%s%s", code, so, se)
	}
	var eps []api.Endpoint
	if err := json.Unmarshal([]byte(so), &eps); err != nil {
		return nil, permanent(fmt.Errorf("vxwire endpoint ls --all --json: %w\n%s", err, so))
	}
	return eps, nil
}

// memberSummary renders endpoints as NAME@HOST=ADDRESS/MAC, sorted as
// the daemon sorts them.
func memberSummary(eps []api.Endpoint) string {
	var parts []string
	for _, ep := range eps {
		parts = append(parts, fmt.Sprintf("%s@%s=%s/%s", ep.Name, ep.Host, ep.Address, ep.MAC))
	}
	return strings.Join(parts, " ")
}

func TestClusterViewsAndUniqueNames(t *testing.T) {
	e := newEnv(t, "dig")
	p := e.bluePair()
	w1, w2, w3 := e.container("w1"), e.container("w2"), e.container("w3")
	s1, s2 := e.socket(p.h1), e.socket(p.h2)

	ep1 := e.cliAttachArgs(p.h1, w1, "--network", "blue", "--name", "web", "--alias", "shared")
	a1, _, _ := strings.Cut(ep1.Address, "/")

	// Each host's view lists every host's endpoints, with host and MAC.
	var c1, c2 api.Endpoint
	for _, h := range []*host{p.h1, p.h2} {
		e.eventually(readyTimeout, h.id+" lists c1, c2 and web on every host", func() error {
			eps, err := e.cliAllEndpoints(h)
			if err != nil {
				return err
			}
			got := memberSummary(eps)
			for _, ep := range eps {
				switch ep.Name {
				case "c1":
					c1 = ep
				case "c2":
					c2 = ep
				}
			}
			if len(eps) != 3 || c1.Host != "h1" || c2.Host != "h2" || eps[2].Name != "web" || eps[2].Host != "h1" ||
				eps[2].Address != ep1.Address || eps[2].MAC != ep1.MAC {
				return fmt.Errorf("endpoint ls --all: %s; want c1@h1, c2@h2, web@h1=%s/%s", got, ep1.Address, ep1.MAC)
			}
			return nil
		})
	}
	if c1.Address != "10.77.0.10/24" || c2.Address != "10.77.0.20/24" || c1.MAC == "" || c2.MAC == "" {
		t.Fatalf("c1 %+v, c2 %+v: want 10.77.0.10/24 and 10.77.0.20/24 with MACs", c1, c2)
	}

	// The second claim of web, on the other host, is refused naming the
	// holder. Before this fix it was attached and web round-robined
	// between the two containers.
	so, se, code := vx("attach", "--socket", s2, "--network", "blue", "--netns", w2.path(), "--name", "web")
	if code != exitConflict || !strings.Contains(se, "held by host h1") {
		t.Fatalf("attach web on h2 while h1 holds it: exit code %d, want %d naming h1\n%s%s", code, exitConflict, so, se)
	}
	e.noStackTrace("attach web on h2", so+se)
	// The same container and host take another name, sharing the alias.
	ep2 := e.cliAttachArgs(p.h2, w2, "--network", "blue", "--name", "web2", "--alias", "shared")
	a2, _, _ := strings.Cut(ep2.Address, "/")

	e.eventually(readyTimeout, "shared resolves to web and web2, web to web alone", func() error {
		if err := e.resolvesTo(p.c1, "10.77.0.1", "shared", a1, a2); err != nil {
			return err
		}
		if err := e.resolvesTo(p.c2, "10.77.0.1", "shared", a1, a2); err != nil {
			return err
		}
		return e.resolvesTo(p.c2, "10.77.0.1", "web", a1)
	})
	e.eventually(readyTimeout, "network inspect blue on h1 lists every host's members", func() error {
		m, err := e.cliMembers(p.h1, "blue")
		if err != nil {
			return err
		}
		want := memberSummary([]api.Endpoint{c1, c2, {Name: "web", Host: "h1", Address: ep1.Address, MAC: ep1.MAC},
			{Name: "web2", Host: "h2", Address: ep2.Address, MAC: ep2.MAC}})
		if got := memberSummary(m); got != want {
			return fmt.Errorf("members %s, want %s", got, want)
		}
		return nil
	})
	// Without --all, the list stays this host's.
	if out := e.mustVX("endpoint", "ls", "--socket", s1); strings.Contains(out, "web2") || strings.Contains(out, "c2") {
		t.Errorf("endpoint ls on h1 without --all lists h2's endpoints:\n%s", out)
	}

	// Once web is detached on h1 and h2 has learnt it, h2 may take it.
	e.mustVX("detach", "--socket", s1, "--network", "blue", "--name", "web")
	e.eventually(readyTimeout, "h2 attaches web after h1 let it go", func() error {
		so, se, code := vx("attach", "--socket", s2, "--network", "blue", "--netns", w3.path(), "--name", "web")
		if code != 0 {
			return fmt.Errorf("exit code %d\n%s%s", code, so, se)
		}
		return nil
	})
}

// cliAttachArgs attaches container c through h's daemon with `vxwire
// attach --json` and further args, and returns the endpoint it printed.
func (e *env) cliAttachArgs(h *host, c *netns, args ...string) api.Endpoint {
	e.t.Helper()
	out := e.mustVX(append([]string{"attach", "--socket", e.socket(h), "--json", "--netns", c.path()}, args...)...)
	var ep api.Endpoint
	if err := json.Unmarshal([]byte(out), &ep); err != nil {
		e.t.Fatalf("vxwire attach --json: %v\n%s", err, out)
	}
	if ep.Host != h.id || ep.MAC == "" {
		e.t.Fatalf("vxwire attach --json: host %q mac %q, want %s and a MAC", ep.Host, ep.MAC, h.id)
	}
	return ep
}
