package tests

//  PFX-b1 .11  PFX-b2 .12  PFX-r1 (red)   PFX-b3 .21  PFX-b4 .22    PFX-b5 .31  PFX-b6 .32
//        \       |        /                   \       /                 \       /
//        vxwire up (PFX-h1)                vxwire up (PFX-h2)        vxwire up (PFX-h3)
//        gw 10.77.0.1 + 10.78.0.1:53       gw 10.77.0.1:53           gw 10.77.0.1:53
//        PFX-u1 198.18.0.1 ------------- PFX-u2 198.18.0.2 -------- PFX-u3 198.18.0.3
//                              \_______ bridge br0 in PFX-sw _______/
//
//  network blue: VNI 256, 10.77.0.0/24 (b1-b6); network red: VNI 257,
//  10.78.0.0/24 (r1 = 10.78.0.11, on h1 only). Every host peers with the
//  two others; records reach each host by gossip.

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// dnsTimeout bounds the wait for a name to appear or vanish somewhere.
const dnsTimeout = 20 * time.Second

// TestDNSThreeHosts checks that every blue container resolves every other
// blue container, on its own host and on the others, as NAME and
// NAME.blue on its gateway, and pings it by name through the resolv.conf
// the daemon wrote; and that red and blue do not see each other's names.
func TestDNSThreeHosts(t *testing.T) {
	e := newEnv(t, "dig")
	hosts, _ := e.threeHosts()
	type ctr struct {
		ns   *netns
		ep   epConf
		host int
	}
	var blues []ctr
	for h := range 3 {
		for j := 1; j <= 2; j++ {
			name := fmt.Sprintf("b%d", 2*h+j)
			n := e.container(name)
			blues = append(blues, ctr{n, epConf{network: "blue", name: name, ns: n, addr: fmt.Sprintf("10.77.0.%d%d", h+1, j)}, h})
		}
	}
	r1 := e.container("r1")
	redEP := epConf{network: "red", name: "r1", ns: r1, addr: "10.78.0.11"}

	var confs []hostConf
	for i, h := range hosts {
		c := hostConf{peers: others(hosts, h), networks: []netConf{blue, red}}
		for _, b := range blues {
			if b.host == i {
				c.endpoints = append(c.endpoints, b.ep)
			}
		}
		if i == 0 {
			c.endpoints = append(c.endpoints, redEP)
		}
		confs = append(confs, c)
	}
	e.startInTurn(hosts, confs)

	// The daemon points each container's resolver at its gateway.
	for _, c := range append(blues, ctr{r1, redEP, 0}) {
		net, gw := "blue", blue.gateway
		if c.ep.network == "red" {
			net, gw = "red", red.gateway
		}
		e.eventually(readyTimeout, "resolv.conf of "+c.ns.name, func() error {
			b, err := os.ReadFile("/etc/netns/" + c.ns.name + "/resolv.conf")
			if err != nil {
				return err
			}
			if s := string(b); !strings.Contains(s, "nameserver "+gw+"\n") || !strings.Contains(s, "search "+net+"\n") {
				return permanent(fmt.Errorf("want nameserver %s and search %s, got:\n%s", gw, net, s))
			}
			return nil
		})
	}

	start := time.Now()
	for _, from := range blues {
		for _, to := range blues {
			if from.ns == to.ns {
				continue
			}
			for _, name := range []string{to.ep.name, to.ep.name + ".blue"} {
				e.eventually(dnsTimeout, fmt.Sprintf("%s resolves %s", from.ep.name, name), func() error {
					return e.resolvesTo(from.ns, blue.gateway, name, to.ep.addr)
				})
			}
		}
	}
	t.Logf("30 ordered pairs resolved as NAME and NAME.blue, %v after the daemons were ready", time.Since(start).Round(time.Millisecond))

	for _, from := range blues {
		for _, to := range blues {
			if from.ns == to.ns {
				continue
			}
			e.eventually(reachTimeout, fmt.Sprintf("%s pings %s by name", from.ep.name, to.ep.name), func() error {
				out, err := e.in(from.ns, "ping", "-c", "1", "-W", "2", to.ep.name)
				if err != nil {
					return err
				}
				if want := fmt.Sprintf("(%s)", to.ep.addr); !strings.Contains(out, want) {
					return permanent(fmt.Errorf("ping %s did not use address %s:\n%s", to.ep.name, to.ep.addr, out))
				}
				return nil
			})
		}
	}

	// Isolation: red does not see blue's names, blue does not see red's.
	for _, b := range blues {
		for _, name := range []string{b.ep.name, b.ep.name + ".blue"} {
			if err := e.hasStatus(r1, red.gateway, name, "NXDOMAIN"); err != nil {
				t.Error(err)
			}
		}
	}
	if err := e.resolvesTo(r1, red.gateway, "r1", "10.78.0.11"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{"r1", "r1.red"} {
		for _, b := range []ctr{blues[0], blues[5]} { // same host as r1, and another
			if err := e.hasStatus(b.ns, blue.gateway, name, "NXDOMAIN"); err != nil {
				t.Error(err)
			}
		}
	}
}
