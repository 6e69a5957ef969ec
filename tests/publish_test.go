package tests

//                     PFX-sw: bridge br0 (the underlay segment)
//      /                  |                  |                  \
//   PFX-h1 198.18.0.1   PFX-h2 198.18.0.2   PFX-h3 198.18.0.3   PFX-cl 198.18.0.50
//   web1 10.77.0.11     web2 10.77.0.12     (no web)            client, not a host
//   (alias web)         (alias web, later)
//
//  network blue on every host; [[publish]] 8080 -> web:80 (ingress) in
//  every host's file; 9090 -> web:80 and 8081 -> web:80 (host mode)
//  added through the API on h1, replicated through the log. Each web
//  container runs socat on :80 answering "NAME CLIENT-ADDRESS".

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// pubTimeout bounds the wait for a publish to be served somewhere.
const pubTimeout = 20 * time.Second

// webServer runs an HTTP server on port 80 inside n that answers every
// request with "NAME PEER-ADDRESS" and appends the peer address to its log.
func (e *env) webServer(n *netns, name string) string {
	e.t.Helper()
	log := filepath.Join(e.dir, name+"-clients.log")
	script := e.file(name+"-http.sh", fmt.Sprintf(`#!/bin/sh
cr=$(printf '\r')
while IFS= read -r l; do
	if [ "$l" = "$cr" ] || [ -z "$l" ]; then break; fi
done
echo "$SOCAT_PEERADDR" >>%q
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n%%s %%s\n' %q "$SOCAT_PEERADDR"
`, log, name))
	if err := os.Chmod(script, 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.startProc(n, "http", "socat", "TCP-LISTEN:80,fork,reuseaddr", "EXEC:"+script)
	return log
}

// fetchN fetches url n times from namespace c, one connection each, and
// counts the answers by server name; failures count under "".
func (e *env) fetchN(c *netns, url string, n int) (map[string]int, error) {
	script := fmt.Sprintf(`for i in $(seq %d); do curl -s -m 3 %s || echo; done`, n, url)
	out, err := command(2*time.Minute, "ip", "netns", "exec", c.name, "sh", "-c", script)
	if err != nil {
		return nil, err
	}
	got := map[string]int{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		name, _, _ := strings.Cut(l, " ")
		got[name]++
	}
	return got, nil
}

// fetchName fetches url once from c and returns the server's name.
func (e *env) fetchName(c *netns, url string) (string, error) {
	out, err := e.in(c, "curl", "-s", "-m", "3", url)
	if err != nil {
		return "", err
	}
	name, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	return name, nil
}

// publishConf is a [[publish]] table.
func publishConf(port int, to, mode string) string {
	return fmt.Sprintf("\n[[publish]]\nnetwork = \"blue\"\nport = %d\nto = %q\nmode = %q\n", port, to, mode)
}

// cliPublishes returns `vxwire publish ls --json` on h.
func (e *env) cliPublishes(h *host) ([]api.Publish, error) {
	so, se, code := vx("publish", "ls", "--socket", e.socket(h), "--json")
	if code != 0 {
		return nil, fmt.Errorf("vxwire publish ls: exit code %d\n%s%s", code, so, se)
	}
	var ps []api.Publish
	if err := json.Unmarshal([]byte(so), &ps); err != nil {
		return nil, permanent(fmt.Errorf("vxwire publish ls --json: %w\n%s", err, so))
	}
	return ps, nil
}

// publishCluster starts three hosts on one segment with blue and the
// publish of port 8080 in every file, web1 on h1, and a client namespace
// on the segment that is not a host.
func (e *env) publishCluster() (hosts []*host, client, web1 *netns) {
	e.t.Helper()
	hosts, sw := e.threeHosts()
	client = e.newNS("cl")
	e.attachUnderlay(sw, client, "eth0", "c", "198.18.0.50")
	web1 = e.container("web1")
	for i, h := range hosts {
		c := hostConf{peers: others(hosts, h), networks: []netConf{blue}}
		if i == 0 {
			c.endpoints = []epConf{{network: "blue", name: "web1", ns: web1, addr: "10.77.0.11", aliases: []string{"web"}}}
		}
		cfg := e.file(h.id+".toml", e.render(h, c)+publishConf(8080, "web:80", "ingress"))
		d := e.startDaemon(h, cfg)
		var names []string
		for _, ep := range c.endpoints {
			names = append(names, ep.name)
		}
		if err := d.ready(names...); err != nil {
			e.t.Fatalf("daemon %s ready: %v", h.id, err)
		}
	}
	return hosts, client, web1
}

// TestPublishIngress checks the routing mesh: a client on the underlay
// that is not a host reaches web on every host's published port, also
// where web does not run; with replicas on two hosts, 100 connections to
// a third host reach both; a publish added through the API on one host
// serves on the others; host mode refuses on a host without web.
func TestPublishIngress(t *testing.T) {
	e := newEnv(t, "socat", "curl")
	hosts, client, web1 := e.publishCluster()
	log1 := e.webServer(web1, "web1")

	// web runs only on h1: h2 and h3 forward across the overlay.
	for _, h := range hosts {
		url := fmt.Sprintf("http://%s:8080/", h.addr)
		e.eventually(pubTimeout, "fetch "+url, func() error {
			name, err := e.fetchName(client, url)
			if err == nil && name != "web1" {
				return fmt.Errorf("answered by %q, want web1", name)
			}
			return err
		})
	}
	// The server sees its host's gateway, as behind Docker's mesh.
	b, err := os.ReadFile(log1)
	if err != nil || strings.Trim(strings.ReplaceAll(string(b), blue.gateway+"\n", ""), "\n") != "" {
		t.Errorf("web1's clients %q (%v), want the gateway %s only", b, err, blue.gateway)
	}

	// A second replica on h2, attached through the API with the alias.
	web2 := e.container("web2")
	e.webServer(web2, "web2")
	e.mustVX("attach", "--socket", e.socket(hosts[1]), "--network", "blue", "--netns", web2.path(),
		"--name", "web2", "--ip", "10.77.0.12", "--alias", "web")
	for _, h := range hosts {
		url := fmt.Sprintf("http://%s:8080/", h.addr)
		e.eventually(pubTimeout, "both replicas behind "+url, func() error {
			got, err := e.fetchN(client, url, 100)
			if err != nil {
				return err
			}
			if got["web1"] < 30 || got["web2"] < 30 || got["web1"]+got["web2"] != 100 {
				return fmt.Errorf("100 connections to %s: %v, want both replicas at least 30 and no failures", url, got)
			}
			t.Logf("100 connections to %s: %v", url, got)
			return nil
		})
	}

	// web2 leaves: new connections stop going to it within a second, on
	// its own host and across the overlay, and none fails meanwhile.
	e.mustVX("detach", "--socket", e.socket(hosts[1]), "--network", "blue", "--name", "web2")
	took, err := timed(pubTimeout, func() error {
		got, err := e.fetchN(client, "http://"+hosts[2].addr+":8080/", 10)
		if err != nil {
			return err
		}
		if got["web1"] != 10 {
			return fmt.Errorf("10 connections after web2 left: %v", got)
		}
		return nil
	})
	if err != nil || took > 2*time.Second {
		t.Errorf("after web2 left, connections reached only web1 after %v (%v); want within a second", took, err)
	}
	t.Logf("web2 left: every new connection reached web1 %v later", took)

	// Published through the API on h1: replicated, served on h3.
	e.mustVX("publish", "add", "--socket", e.socket(hosts[0]), "--network", "blue", "9090", "web:80")
	e.eventually(pubTimeout, "API publish served on h3", func() error {
		_, err := e.fetchName(client, "http://"+hosts[2].addr+":9090/")
		return err
	})
	// Host mode: only hosts running web listen.
	e.mustVX("publish", "add", "--socket", e.socket(hosts[0]), "--network", "blue", "--mode", "host", "8081", "web:80")
	e.eventually(pubTimeout, "host mode on h1 forwards to web1", func() error {
		name, err := e.fetchName(client, "http://"+hosts[0].addr+":8081/")
		if err == nil && name != "web1" {
			return permanent(fmt.Errorf("host mode on h1 answered by %q, want its own web1", name))
		}
		return err
	})
	e.eventually(pubTimeout, "h3 lists the host-mode publish as not listening", func() error {
		ps, err := e.cliPublishes(hosts[2])
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Port == 8081 && p.Address == "" && strings.Contains(p.Error, "host mode") {
				return nil
			}
		}
		return fmt.Errorf("publish ls on h3: %+v", ps)
	})
	if out, err := e.in(client, "curl", "-s", "-m", "3", "http://"+hosts[2].addr+":8081/"); err == nil {
		t.Errorf("host mode on h3, which runs no web, answered: %q", out)
	}

	// Refusals: the same port twice, and a port in use; the daemon and
	// its other publishes carry on.
	so, se, code := vx("publish", "add", "--socket", e.socket(hosts[1]), "--network", "blue", "9090", "web:80")
	if code != exitConflictCode || !strings.Contains(so+se, "already published") {
		t.Errorf("publishing 9090 twice: exit %d, %s%s; want a conflict saying it is already published", code, so, se)
	}
	e.startProc(hosts[1].netns, "squatter", "socat", "TCP-LISTEN:7070,bind="+hosts[1].addr+",reuseaddr,fork", "EXEC:/bin/true")
	e.eventually(pubTimeout, "the squatter listens", func() error {
		_, err := e.in(hosts[1].netns, "socat", "-T1", "/dev/null", "TCP:"+hosts[1].addr+":7070")
		return err
	})
	so, se, code = vx("publish", "add", "--socket", e.socket(hosts[1]), "--network", "blue", "7070", "web:80")
	if code != exitConflictCode || !strings.Contains(so+se, "in use") {
		t.Errorf("publishing a port in use: exit %d, %s%s; want a conflict saying it is in use", code, so, se)
	}
	if name, err := e.fetchName(client, "http://"+hosts[1].addr+":8080/"); err != nil || name == "" {
		t.Errorf("after the refusals, 8080 on h2: %q, %v", name, err)
	}

	// UDP, published through the API: answered on h3, relayed to web1.
	e.startProc(web1, "udp", "socat", "UDP-RECVFROM:5353,fork", "SYSTEM:echo udp-from-web1")
	e.mustVX("publish", "add", "--socket", e.socket(hosts[1]), "--network", "blue", "--proto", "udp", "5353", "web:5353")
	e.eventually(pubTimeout, "UDP through h3", func() error {
		out, err := e.in(client, "sh", "-c", "echo ping | socat -t 2 - UDP:"+hosts[2].addr+":5353")
		if err == nil && !strings.Contains(out, "udp-from-web1") {
			return fmt.Errorf("answer %q", out)
		}
		return err
	})

	// Removal through the API stops every host's listener.
	e.mustVX("publish", "rm", "--socket", e.socket(hosts[2]), "9090")
	e.eventually(pubTimeout, "9090 closed on h1", func() error {
		if _, err := e.fetchName(client, "http://"+hosts[0].addr+":9090/"); err == nil {
			return fmt.Errorf("still served")
		}
		return nil
	})
}

// exitConflictCode is the CLI's exit code for a refused change.
const exitConflictCode = 5
