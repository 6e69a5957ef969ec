package tests

// Attacks on published ports. Topology: publishCluster (publish_test.go)
// plus db 10.77.0.13 on h1, an endpoint no publish names, running the
// same web server.

import (
	"fmt"
	"strings"
	"testing"
)

// relayRequest sends a relay header for tcp/8080 naming target (an IPv4
// address as 4 octal escapes for printf), then an HTTP request, to the
// relay at address relay from namespace from bound to address bind, and
// returns all that came back.
func (e *env) relayRequest(from *netns, bind, relay, target string) string {
	return e.relayRaw(from, bind, relay, `\037\220`+target)
}

// relayRaw is relayRequest with the port and target given as printf
// escapes.
func (e *env) relayRaw(from *netns, bind, relay, portTarget string) string {
	script := fmt.Sprintf(`printf 'vxpr\001\006%sGET / HTTP/1.0\r\n\r\n' | socat -t 3 -T 3 - TCP:%s:4789,bind=%s`, portTarget, relay, bind)
	out, _ := command(cmdTimeout, "ip", "netns", "exec", from.name, "sh", "-c", script)
	return out
}

// TestAdversaryPublishRelayTarget plays a peer host that uses h1's relay
// to reach an endpoint no publish names. The relay is the one door where
// a connection names its target; it serves only endpoints of this host
// that the ingress publish of that port forwards to. Beside it, the same
// request naming web1 (which 8080 publishes) is answered, so the path
// works for what is allowed.
func TestAdversaryPublishRelayTarget(t *testing.T) {
	e := newEnv(t, "socat", "curl")
	hosts, client, web1 := e.publishCluster()
	e.webServer(web1, "web1")
	db := e.container("db")
	e.webServer(db, "db")
	e.mustVX("attach", "--socket", e.socket(hosts[0]), "--network", "blue", "--netns", db.path(),
		"--name", "db", "--ip", "10.77.0.13")
	e.eventually(pubTimeout, "8080 served on h1", func() error {
		_, err := e.fetchName(client, "http://"+hosts[0].addr+":8080/")
		return err
	})

	// Probe: a peer's address naming web1 through the relay gets it.
	web1Addr := `\012\115\000\013`
	e.eventually(pubTimeout, "relay from h2 to web1", func() error {
		out := e.relayRequest(hosts[1].netns, hosts[1].addr, hosts[0].addr, web1Addr)
		if !strings.HasPrefix(out, "\x00") || !strings.Contains(out, "web1 ") {
			return fmt.Errorf("relay answered %q, want 0 then web1's page", out)
		}
		return nil
	})
	// Attack: the same peer naming db, which no publish names.
	before := e.mustStatus(hosts[0]).Refused["relay_target_not_published"]
	out := e.relayRequest(hosts[1].netns, hosts[1].addr, hosts[0].addr, `\012\115\000\015`)
	if strings.Contains(out, "db ") || !strings.HasPrefix(out, "\x01") {
		t.Errorf("relay naming db answered %q; want the refusal byte 1 and nothing of db", out)
	}
	// Attack: the same for a bogus port, by the right target.
	out = e.relayRaw(hosts[1].netns, hosts[1].addr, hosts[0].addr, `\000\120`+web1Addr)
	if strings.Contains(out, "web1 ") || !strings.HasPrefix(out, "\x01") {
		t.Errorf("relay for unpublished port 80 answered %q; want the refusal byte 1", out)
	}
	if got := e.mustStatus(hosts[0]).Refused["relay_target_not_published"]; got != before+2 {
		t.Errorf("refused relay_target_not_published went from %d to %d, want +2", before, got)
	}
}

// TestAdversaryPublishRelayNonPeer plays an underlay machine that is not
// a host and speaks the relay protocol to reach web1 directly: the relay
// accepts connections from the peers' addresses only and closes it
// without an answer. The probe beside it is TestAdversaryPublishRelayTarget's.
func TestAdversaryPublishRelayNonPeer(t *testing.T) {
	e := newEnv(t, "socat", "curl")
	hosts, client, web1 := e.publishCluster()
	e.webServer(web1, "web1")
	e.eventually(pubTimeout, "8080 served on h1", func() error {
		_, err := e.fetchName(client, "http://"+hosts[0].addr+":8080/")
		return err
	})
	// Probe: the same request from a peer is served.
	e.eventually(pubTimeout, "relay from h2 to web1", func() error {
		if out := e.relayRequest(hosts[1].netns, hosts[1].addr, hosts[0].addr, `\012\115\000\013`); !strings.Contains(out, "web1 ") {
			return fmt.Errorf("relay answered %q to a peer", out)
		}
		return nil
	})
	if out := e.relayRequest(client, "198.18.0.50", hosts[0].addr, `\012\115\000\013`); out != "" {
		t.Errorf("relay answered a non-peer: %q", out)
	}
	if n := e.mustStatus(hosts[0]).Refused["relay_not_peer"]; n != 1 {
		t.Errorf("refused relay_not_peer = %d, want 1", n)
	}
}

// TestAdversaryPublishRelayEncrypted plays a peer host (h2's underlay
// address) that asks h1's plain relay, on the underlay, for web1, the
// endpoint of the encrypted network sec that h1's ingress publish 8080
// names. The plain relay carries its stream in the clear, so it must
// refuse an encrypted network's endpoint even now that such publishes
// are relayed inside WireGuard; it answers the refusal byte and nothing
// of web1. Beside it, the same peer asking the plain relay for pweb, the
// endpoint of the plain network's publish 8081, gets pweb's page. Before
// the tunnel relay existed the plain relay refused this too; the test
// keeps the door shut now that the accepting side relays sec remotely.
func TestAdversaryPublishRelayEncrypted(t *testing.T) {
	e := newEnv(t, "socat", "curl")
	p := e.encPublishCluster()
	e.fetchAs(p.client, p.secURL, p.secName) // relayed inside WireGuard

	// Probe: the plain relay serves the plain network's publish.
	e.eventually(pubTimeout, "plain relay from h2 to pweb", func() error {
		out := e.relayRaw(p.h2.netns, p.h2.addr, p.h1.addr, `\037\221\012\115\000\014`)
		if !strings.HasPrefix(out, "\x00") || !strings.Contains(out, p.plainName) {
			return fmt.Errorf("relay answered %q, want 0 then pweb's page", out)
		}
		return nil
	})
	// Attack: the same peer asks the plain relay for web1 on sec.
	before := e.mustStatus(p.h1.host).Refused["relay_target_not_published"]
	out := e.relayRaw(p.h2.netns, p.h2.addr, p.h1.addr, `\037\220\012\117\000\013`)
	if strings.Contains(out, p.secName) || !strings.HasPrefix(out, "\x01") {
		t.Errorf("plain relay naming web1 of the encrypted network answered %q; want the refusal byte 1 and nothing of web1", out)
	}
	if got := e.mustStatus(p.h1.host).Refused["relay_target_not_published"]; got != before+1 {
		t.Errorf("refused relay_target_not_published went from %d to %d, want +1", before, got)
	}
}
