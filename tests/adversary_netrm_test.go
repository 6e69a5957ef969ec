package tests

//   PFX-g2 (attached by API)
//        |
//  vxwire up (PFX-h1)    vxwire up (PFX-h2)    vxwire up (PFX-h3)
//  198.18.0.1            198.18.0.2            198.18.0.3
//        \___________ PFX-sw br0 ____|_________________/
//
// h2's daemon is killed while its container g2 is on green; h1 and h3
// still make a majority of the replicated log.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// TestAdversaryNetworkRmWhileHostDown removes, on h1, a network that has
// an endpoint on h2 while h2's daemon is down (killed, or cut off): h2's
// gossip records are gone from h1, but h1 and h3 are still a majority of
// the log. Before this fix only the gossip records were checked: the
// removal committed, and h2, once back, took the network down under its
// container. Now the names the log holds for h2 count too: the removal is
// refused naming h2/g2. The probe: once h2 is back and g2 is detached,
// the removal succeeds.
func TestAdversaryNetworkRmWhileHostDown(t *testing.T) {
	e := newEnv(t)
	hosts, _ := e.threeHosts()
	h1, h2 := hosts[0], hosts[1]
	conf := func(h *host) string {
		return e.writeConfig(h, hostConf{peers: others(hosts, h), peerTimeout: "3s"})
	}
	var ds []*daemon
	for _, h := range hosts {
		ds = append(ds, e.startDaemon(h, conf(h)))
	}
	for _, d := range ds {
		d.waitReady()
	}
	s1 := e.socket(h1)
	e.mustVX("network", "create", "--socket", s1, "--subnet", "10.88.0.0/24", "green")
	e.eventually(readyTimeout, "h2 lists green", func() error {
		ns, err := e.cliNetworks(h2)
		if err != nil {
			return err
		}
		if _, ok := findNetwork(ns, "green"); !ok {
			return fmt.Errorf("not yet: %+v", ns)
		}
		return nil
	})
	g2 := e.container("g2")
	e.cliAttach(h2, "green", g2, "g2")
	members := func() (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		n, err := api.NewClient(s1).Network(ctx, "green")
		if err != nil {
			return "", err
		}
		var out []string
		for _, m := range n.Members {
			out = append(out, m.Host+"/"+m.Name)
		}
		return strings.Join(out, " "), nil
	}
	e.eventually(readyTimeout, "h1 sees g2 on h2", func() error {
		m, err := members()
		if err == nil && !strings.Contains(m, "h2/g2") {
			err = fmt.Errorf("members %q", m)
		}
		return err
	})

	ds[1].kill()
	e.eventually(readyTimeout, "h1 forgets h2's records", func() error {
		m, err := members()
		if err == nil && strings.Contains(m, "h2/g2") {
			err = fmt.Errorf("members %q", m)
		}
		return err
	})
	so, se, code := vx("network", "rm", "--socket", s1, "green")
	if code != exitConflict || !strings.Contains(se, "h2/g2") {
		t.Fatalf("network rm green on h1 with g2 on the downed h2: exit code %d, want %d naming h2/g2\n%s%s", code, exitConflict, so, se)
	}
	e.noStackTrace("vxwire network rm", so+se)

	// The probe: h2 comes back with g2, which is then detached.
	ds[1] = e.startDaemon(h2, conf(h2))
	ds[1].waitReady("g2")
	e.mustVX("detach", "--socket", e.socket(h2), "--network", "green", "--name", "g2")
	e.waitDetached(h2, "g2")
	e.eventually(readyTimeout, "network rm green after the detach", func() error {
		so, se, code := vx("network", "rm", "--socket", s1, "green")
		switch code {
		case 0:
			return nil
		case exitConflict:
			return fmt.Errorf("exit code %d\n%s%s", code, so, se)
		}
		return permanent(fmt.Errorf("exit code %d\n%s%s", code, so, se))
	})
}
