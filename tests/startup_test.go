package tests

//  PFX-c1 10.77.0.11       PFX-c2 10.77.0.21       PFX-c3 10.77.0.31
//        |                       |                       |
//  vxwire up (PFX-h1)      vxwire up (PFX-h2)      vxwire up (PFX-h3)
//  PFX-u1 198.18.0.1 ----- PFX-u2 198.18.0.2 ----- PFX-u3 198.18.0.3
//                \______ bridge br0 in PFX-sw ______/
//
//  All three daemons are started at the same moment, several times over.

import (
	"fmt"
	"sync"
	"testing"
)

// TestSimultaneousStart starts three hosts at the same moment, as a
// machine boot or an orchestrator does, and requires all of them to come
// up with their endpoints.
func TestSimultaneousStart(t *testing.T) {
	e := newEnv(t)
	hosts, _ := e.threeHosts()
	confs := make([]hostConf, len(hosts))
	for i, h := range hosts {
		c := e.container(fmt.Sprintf("c%d", i+1))
		confs[i] = hostConf{peers: others(hosts, h), networks: []netConf{blue},
			endpoints: []epConf{{network: "blue", name: fmt.Sprintf("c%d", i+1), ns: c, addr: fmt.Sprintf("10.77.0.%d1", i+1)}}}
	}
	for round := range 5 {
		ds := make([]*daemon, len(hosts))
		for i, h := range hosts {
			ds[i] = e.startDaemon(h, e.writeConfig(h, confs[i]))
		}
		var wg sync.WaitGroup
		errs := make([]error, len(ds))
		for i, d := range ds {
			wg.Go(func() {
				errs[i] = poll(readyTimeout, func() error {
					if !d.running() {
						return permanent(fmt.Errorf("daemon %s exited: %v\n%s", d.h.id, d.err, tail(d.logText(), 10)))
					}
					st, err := e.status(d.h)
					if err == nil && len(missingEndpoints(st, []string{confs[i].endpoints[0].name})) > 0 {
						err = fmt.Errorf("endpoint not listed yet")
					}
					return err
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: host %s: %v", round+1, hosts[i].id, err)
			}
		}
		for _, d := range ds {
			if err := d.stop(); err != nil {
				t.Fatalf("round %d: daemon %s: %v", round+1, d.h.id, err)
			}
		}
	}
}
