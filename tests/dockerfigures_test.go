package tests

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestDockerRunToPing measures, for vxwire and for Docker's own bridge
// driver in the same run, the time from `docker run -d` to the first ping
// answered by the new container (from a container already on the
// network, on the same host), and the time `docker network connect`
// takes. Every run must succeed; the figures are logged.
func TestDockerRunToPing(t *testing.T) {
	if testing.Short() {
		t.Skip("figures: not in -short")
	}
	e := newEnv(t)
	_, _, _, _, k1, _ := e.dockerPair()
	k1.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.87.0.0/24", "vx")
	k1.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.88.0.0/24", "vx2")
	k1.mustDocker("network", "create", "-d", "bridge", "--subnet", "10.89.0.0/24", "br")
	k1.mustDocker("network", "create", "-d", "bridge", "--subnet", "10.90.0.0/24", "br2")
	const runs = 50
	for _, n := range []struct{ net, other, addr string }{{"vx", "vx2", "10.87.0.200"}, {"br", "br2", "10.89.0.200"}} {
		k1.mustDocker("run", "-d", "--name", "probe-"+n.net, "--network", n.net, "bb:1", "sleep", "3600")
		var run, connect []time.Duration
		for i := range runs {
			name := fmt.Sprintf("fig-%s-%d", n.net, i)
			t0 := time.Now()
			k1.mustDocker("run", "-d", "--name", name, "--network", n.net, "--ip", n.addr, "bb:1", "sleep", "3600")
			e.eventually(20*time.Second, "probe pings "+name, func() error {
				_, err := k1.docker("exec", "probe-"+n.net, "ping", "-c", "1", "-W", "1", n.addr)
				return err
			})
			run = append(run, time.Since(t0))
			if i < 20 {
				t1 := time.Now()
				k1.mustDocker("network", "connect", n.other, name)
				connect = append(connect, time.Since(t1))
			}
			k1.mustDocker("rm", "-f", name)
		}
		t.Logf("%s: docker run to first ping: median %v, p99 %v (n=%d); docker network connect: median %v, p99 %v (n=%d)",
			n.net, pct(run, 50), pct(run, 99), len(run), pct(connect, 50), pct(connect, 99), len(connect))
	}
}

// pct returns the p-th percentile of ds (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)].Round(time.Millisecond)
}
