package tests

//                     PFX-sw: bridge br0 (the underlay segment)
//      /                          |                          \
//   PFX-h1 198.18.0.1           PFX-h2 198.18.0.2           PFX-cl 198.18.0.50
//   key, tunnel 100.82.0.1      key, tunnel 100.82.0.2      client, not a host
//   web1 10.79.0.11 (sec,       (no endpoint)
//        alias web)               ^ tshark on PFX-u2, host 198.18.0.1
//   pweb 10.77.0.12 (blue)
//
//  sec: VNI 4000, encrypted; blue: VNI 256, plain. In both files:
//  [[publish]] sec 8080 -> web:80 and blue 8081 -> pweb:80, ingress;
//  sec udp 5353 -> web:5353 added through the API.
//  A connection to h2:8080 is relayed to h1 inside WireGuard (TCP on the
//  inner stacks, 100.82.0.2 -> 100.82.0.1:4789); one to h2:8081 through
//  the plain relay (TCP 198.18.0.2 -> 198.18.0.1:4789).

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// encPublish is encPublishCluster's topology.
type encPublish struct {
	h1, h2       *encHost
	client       *netns
	web1, pweb   *netns
	secName      string // what web1 answers with: a marker
	plainName    string // what pweb answers with: a marker
	secURL, blue string // h2's published ports
}

// encPublishConf is the [[publish]] tables of encPublishCluster.
const encPublishConf = `
[[publish]]
network = "sec"
port = 8080
to = "web:80"

[[publish]]
network = "blue"
port = 8081
to = "pweb:80"
`

// encPublishCluster starts two hosts with keys on one segment carrying
// sec (encrypted) and blue, with web1 (sec, alias web) and pweb (blue) on
// h1 running web servers that answer with markers, and a client on the
// segment that is not a host.
func (e *env) encPublishCluster() *encPublish {
	e.t.Helper()
	sw := e.underlaySwitch()
	var hs []*encHost
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("h%d", i)
		h := &host{netns: e.newNS(id), id: id, link: fmt.Sprintf("%su%d", e.prefix, i), addr: fmt.Sprintf("198.18.0.%d", i)}
		e.attachUnderlay(sw, h.netns, h.link, fmt.Sprint(i), h.addr)
		hs = append(hs, e.withKey(h))
	}
	p := &encPublish{h1: hs[0], h2: hs[1], client: e.newNS("cl")}
	e.attachUnderlay(sw, p.client, "eth0", "c", "198.18.0.50")
	p.web1, p.pweb = e.container("web1"), e.container("pweb")
	p.secName, p.plainName = string(e.marker("sec")), string(e.marker("blue"))
	e.webServer(p.web1, p.secName)
	e.webServer(p.pweb, p.plainName)
	nets := []encNetwork{{secNet, true}, {blue, false}}
	e.startEnc(p.h1, encConf{peers: []*encHost{p.h2}, networks: nets, extra: encPublishConf,
		endpoints: []epConf{
			{network: "sec", name: "web1", ns: p.web1, addr: "10.79.0.11", aliases: []string{"web"}},
			{network: "blue", name: "pweb", ns: p.pweb, addr: "10.77.0.12"},
		}})
	e.startEnc(p.h2, encConf{peers: []*encHost{p.h1}, networks: nets, extra: encPublishConf})
	p.secURL, p.blue = "http://"+p.h2.addr+":8080/", "http://"+p.h2.addr+":8081/"
	return p
}

// fetchAs fetches url from c until the answer is want's.
func (e *env) fetchAs(c *netns, url, want string) {
	e.t.Helper()
	e.eventually(pubTimeout, "fetch "+url, func() error {
		name, err := e.fetchName(c, url)
		if err == nil && name != want {
			return fmt.Errorf("answered by %q, want %q", name, want)
		}
		return err
	})
}

// relayTCP returns the frames of capt that are TCP to or from the relay
// port 4789.
func relayTCP(capt *capture) ([][]string, error) {
	rows, err := capt.fields("tcp.srcport", "tcp.dstport")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(rows, func(r []string) bool { return r[0] != "4789" && r[1] != "4789" }), nil
}

// TestPublishIngressEncrypted checks the routing mesh on an encrypted
// network: a client on the underlay that is not a host fetches h2's
// published port of sec, where web runs only on h1, and gets web1's page;
// between h1 and h2 that connection crossed the underlay only inside
// WireGuard: no relay TCP (port 4789) and not the page's marker, but
// WireGuard datagrams. Beside it, the same through blue's publish crosses
// in the clear on the plain relay, which the same capture shows, so the
// check can fail. A UDP publish of sec added through the API is relayed
// the same way. Before this change an encrypted network's publish
// reached only the accepting host's endpoints: h2:8080 answered nothing.
func TestPublishIngressEncrypted(t *testing.T) {
	e := newEnv(t, "socat", "curl", "tshark")
	p := e.encPublishCluster()
	e.fetchAs(p.client, "http://"+p.h1.addr+":8080/", p.secName) // local on h1

	between := "host " + p.h1.addr + " and host " + p.h2.addr
	capt := e.startCapture(p.h2.netns, p.h2.link, between)
	e.fetchAs(p.client, p.secURL, p.secName)
	got, err := e.fetchN(p.client, p.secURL, 10)
	if err != nil || got[p.secName] != 10 {
		t.Errorf("10 fetches of %s: %v (%v), want all answered by web1", p.secURL, got, err)
	}
	e.captureSentinel(capt, p.h2, p.h1)
	if n, err := wgDatagrams(capt); err != nil || n < 20 {
		t.Errorf("%d datagrams to the WireGuard port between h1 and h2 (%v): the relay did not cross inside WireGuard", n, err)
	}
	capt.stop()
	if rows, err := relayTCP(capt); err != nil || len(rows) != 0 {
		t.Errorf("relay TCP in the clear between h1 and h2 for an encrypted network: %d frames (%v)", len(rows), err)
	}
	if ok, err := capt.holds([]byte(p.secName)); err != nil || ok {
		t.Errorf("web1's page crossed the underlay between h1 and h2 in the clear (err %v)", err)
	}
	ps, err := e.cliPublishes(p.h2.host)
	if err != nil {
		t.Fatal(err)
	}
	for _, pub := range ps {
		if pub.Port == 8080 && (pub.Relayed < 11 || pub.Targets != 1) {
			t.Errorf("h2 publish 8080: relayed %d, targets %d; want at least 11 relayed to its one target", pub.Relayed, pub.Targets)
		}
	}

	// UDP, published through the API: answered on h2, relayed to web1
	// inside WireGuard.
	e.startProc(p.web1, "udp", "socat", "UDP-RECVFROM:5353,fork", "SYSTEM:echo udp-from-web1")
	e.mustVX("publish", "add", "--socket", e.socket(p.h1.host), "--network", "sec", "--proto", "udp", "5353", "web:5353")
	e.eventually(pubTimeout, "UDP through h2", func() error {
		out, err := e.in(p.client, "sh", "-c", "echo ping | socat -t 2 - UDP:"+p.h2.addr+":5353")
		if err == nil && !strings.Contains(out, "udp-from-web1") {
			return fmt.Errorf("answer %q", out)
		}
		return err
	})

	// The probe: blue's publish relays in the clear, and the capture
	// sees it.
	plain := e.startCapture(p.h2.netns, p.h2.link, between)
	e.fetchAs(p.client, p.blue, p.plainName)
	e.eventually(30*time.Second, "capture holds the plain relay", func() error {
		if ok, err := plain.holds([]byte(p.plainName)); err != nil || !ok {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	plain.stop()
	if rows, err := relayTCP(plain); err != nil || len(rows) == 0 {
		t.Errorf("the plain relay's TCP is not in the capture (%v): the check above cannot see it", err)
	}
}

// captureSentinel sends a marker in the clear from h to peer (UDP to the
// discard port) and waits until capt holds it: tshark writes in order,
// so the capture then holds everything sent before.
func (e *env) captureSentinel(capt *capture, h, peer *encHost) {
	e.t.Helper()
	m := e.marker("end")
	e.eventually(30*time.Second, "capture holds the sentinel", func() error {
		e.in(h.netns, "sh", "-c", fmt.Sprintf("echo %s | socat -u - UDP:%s:9", m, peer.addr))
		if ok, err := capt.holds(m); err != nil || !ok {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
}

// wgDatagrams counts the frames of capt to the WireGuard port.
func wgDatagrams(capt *capture) (int, error) {
	rows, err := capt.fields("udp.dstport")
	n := 0
	for _, r := range rows {
		if r[0] == fmt.Sprint(wgPort) {
			n++
		}
	}
	return n, err
}
