package tests

//  PFX-c1 10.77.0.10                 PFX-c2 10.77.0.20                 PFX-c3 10.77.0.30
//     eth0 (TAP)                        eth0 (TAP)                        eth0 (TAP)
//  vxwire up (PFX-h1)                vxwire up (PFX-h2)                vxwire up (PFX-h3)
//  PFX-u1 198.18.0.1 --------------- PFX-u2 198.18.0.2 --------------- PFX-u3 198.18.0.3
//                      (veth for two hosts; bridge PFX-sw for three)
//
//  Every host gossips with the others and votes in the address-block log.
//  All daemons get SIGTERM at the same moment: each must exit within
//  stopBound, though none of its peers is left to confirm its leave.

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopBound is how long a daemon may take from SIGTERM to exit.
const stopBound = time.Second

// TestStopTogetherTwoHosts stops two hosts that know each other at the
// same moment. Before this fix each waited 5 s for a peer to take its
// gossip leave (the peer, leaving too, never did): 5.1 s.
func TestStopTogetherTwoHosts(t *testing.T) {
	e := newEnv(t, "dig")
	p := e.bluePair()
	e.waitNames(p.c1, blue.gateway, map[string]string{"c2": "10.77.0.20"})
	e.waitNames(p.c2, blue.gateway, map[string]string{"c1": "10.77.0.10"})
	e.mustPing(p.c1, "10.77.0.20")
	e.stopTogether(p.d1, p.d2)
}

// TestStopTogetherThreeHosts stops three hosts with an address-block log
// (raft, three voters, one of them leader) at the same moment.
func TestStopTogetherThreeHosts(t *testing.T) {
	e := newEnv(t, "dig")
	hosts, _ := e.threeHosts()
	var confs []hostConf
	var ctrs []*netns
	for i, h := range hosts {
		c := e.container(fmt.Sprintf("c%d", i+1))
		ctrs = append(ctrs, c)
		confs = append(confs, hostConf{peers: others(hosts, h), networks: []netConf{blue},
			endpoints: []epConf{{network: "blue", name: fmt.Sprintf("c%d", i+1), ns: c, addr: fmt.Sprintf("10.77.0.%d0", i+1)}}})
	}
	ds := e.startInTurn(hosts, confs)
	// Names from every host everywhere: gossip has converged, and each
	// host's address came from a block the log granted.
	for i, c := range ctrs {
		want := map[string]string{}
		for j := range ctrs {
			if j != i {
				want[fmt.Sprintf("c%d", j+1)] = fmt.Sprintf("10.77.0.%d0", j+1)
			}
		}
		e.waitNames(c, blue.gateway, want)
	}
	e.stopTogether(ds...)
}

// waitNames waits until every name in want resolves on server, from
// container c, to its address.
func (e *env) waitNames(c *netns, server string, want map[string]string) {
	e.t.Helper()
	for name, addr := range want {
		e.eventually(reachTimeout, fmt.Sprintf("%s resolves %s", c.name, name), func() error {
			return e.resolvesTo(c, server, name, addr)
		})
	}
}

// stopTogether sends SIGTERM to every daemon at once and fails the test
// for each that exits with an error or later than stopBound.
func (e *env) stopTogether(ds ...*daemon) {
	e.t.Helper()
	took := make([]time.Duration, len(ds))
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			if err := syscall.Kill(d.cmd.Process.Pid, syscall.SIGTERM); err != nil {
				errs[i] = err
				return
			}
			select {
			case <-d.done:
				took[i] = time.Since(t0)
				errs[i] = exitError(d.err)
			case <-time.After(termTimeout):
				took[i] = termTimeout
				errs[i] = fmt.Errorf("still running %v after SIGTERM", termTimeout)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, d := range ds {
		e.t.Logf("daemon %s exited %v after SIGTERM", d.h.id, took[i].Round(time.Millisecond))
		if errs[i] != nil {
			e.t.Errorf("daemon %s: %v", d.h.id, errs[i])
		} else if took[i] > stopBound {
			e.t.Errorf("daemon %s took %v from SIGTERM to exit, want at most %v", d.h.id, took[i].Round(time.Millisecond), stopBound)
		}
	}
}
