package tests

// Attacks on the address blocks a host behind NAT takes through its
// servers (internal/consensus outside.go), on the topology of
// natservers_test.go. The attacker holds a WireGuard key and speaks the
// block protocol with stock tools: Debian's wireguard-go in the laptop's
// namespace and socat from its tunnel address.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// stockLaptop runs Debian's wireguard-go in the laptop's namespace with
// key (a file) on the laptop's tunnel address, peered with server h. The
// servers must run with rotate_every = "0" (no preshared key).
func (e *env) stockLaptop(n *natServers, key string, h *encHost) {
	e.t.Helper()
	name := e.prefix + "wg"
	sock := "/var/run/wireguard/" + name + ".sock"
	e.t.Cleanup(func() { os.Remove(sock) })
	wgGo := e.startProc(n.lap.netns, "wireguard-go", "wireguard-go", "-f", name)
	e.eventually(readyTimeout, "wireguard-go serving "+sock, func() error {
		if !wgGo.running() {
			return permanent(fmt.Errorf("wireguard-go exited; see its log %s", wgGo.log))
		}
		_, err := os.Stat(sock)
		return err
	})
	e.mustIn(n.lap.netns, "wg", "set", name, "private-key", key, "peer", h.key.pub,
		"endpoint", fmt.Sprintf("%s:%d", h.addr, wgPort), "allowed-ips", h.tunnel+"/32", "persistent-keepalive", "5")
	e.must("ip", "-n", n.lap.name, "addr", "add", n.lap.tunnel+"/32", "dev", name)
	e.must("ip", "-n", n.lap.name, "link", "set", name, "mtu", fmt.Sprint(wgInnerMTU), "up")
	e.must("ip", "-n", n.lap.name, "route", "add", h.tunnel+"/32", "dev", name)
}

// askBlocks sends one raw request to server h's block service, inside the
// tunnel from the laptop's namespace, and returns the reply (empty when
// the connection got none).
func (e *env) askBlocks(n *natServers, h *encHost, req string) string {
	e.t.Helper()
	out, _ := e.in(n.lap.netns, "sh", "-c", fmt.Sprintf("echo '%s' | timeout 25 socat -t 20 - TCP4:%s:7948,bind=%s,connect-timeout=10 2>/dev/null", req, h.tunnel, n.lap.tunnel))
	return strings.TrimSpace(out)
}

// answered sends req as askBlocks does until a reply comes (a loaded
// machine may lose a connection attempt), and returns it.
func (e *env) answered(n *natServers, h *encHost, req string) string {
	e.t.Helper()
	var out string
	e.eventually(60*time.Second, "an answer to "+req, func() error {
		if out = e.askBlocks(n, h, req); out == "" {
			return fmt.Errorf("no answer")
		}
		return nil
	})
	return out
}

// startNATServersStock starts both servers of natServers with the laptop
// peer and no preshared keys, so that stock WireGuard can be the laptop.
func (e *env) startNATServersStock(n *natServers) (a1 string) {
	e.t.Helper()
	d1 := e.startDaemon(n.h1.host, e.file("h1.toml", e.natServerConf(n, n.h1, n.h2, n.c1, "c1", true, "0")))
	d2 := e.startDaemon(n.h2.host, e.file("h2.toml", e.natServerConf(n, n.h2, n.h1, n.c2, "c2", true, "0")))
	d1.waitReady("c1")
	d2.waitReady("c2")
	return e.epAddress(n.h1.host, "c1")
}

// takeProbe asks h for a block as the laptop and checks that the log
// records it for the laptop: the path the attacks use works.
func (e *env) takeProbe(n *natServers, h *encHost) netip.Prefix {
	e.t.Helper()
	var rep struct {
		Block netip.Prefix `json:"block"`
	}
	e.eventually(60*time.Second, "a plain take through the tunnel", func() error {
		out := e.askBlocks(n, h, `{"op":"take","network":"blue","subnet":"10.77.0.0/24","bits":28,"id":6}`)
		if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Block.IsValid() {
			return fmt.Errorf("reply %q: %v", out, err)
		}
		return nil
	})
	e.eventually(30*time.Second, "the log holds "+rep.Block.String()+" for the laptop", func() error {
		_, holder, err := e.logBlock(h, rep.Block.Addr().String())
		if err == nil && holder != "laptop" {
			return permanent(fmt.Errorf("block %s went to %s", rep.Block, holder))
		}
		return err
	})
	return rep.Block
}

// TestAdversaryNATBlockForOtherHost: the laptop's owner, with its key,
// speaks the block protocol by hand and tries to act for server h1: a take
// naming h1, and a pin of c1's address (inside h1's block) for an
// endpoint of its own. The first is refused as malformed (a request names
// no host: the server names the sender from its tunnel address), the
// second by the log; h1 keeps its block and c1 its address. A plain take
// on the same path gets a block, which the log records for the laptop.
func TestAdversaryNATBlockForOtherHost(t *testing.T) {
	e := newNetEnv(t, "nft", "wg", "wireguard-go", "socat")
	n := e.natServers()
	a1 := e.startNATServersStock(n)
	e.stockLaptop(n, n.lap.key.file, n.h1)
	blk := e.takeProbe(n, n.h1)

	before := e.mustStatus(n.h1.host).Refused
	out := e.answered(n, n.h1, `{"op":"take","network":"blue","subnet":"10.77.0.0/24","bits":28,"id":7,"host":"h1"}`)
	if !strings.Contains(out, `"failed"`) || strings.Contains(out, `"block"`) {
		t.Fatalf("a take naming h1 got %q, want a refusal", out)
	}
	out = e.answered(n, n.h1, fmt.Sprintf(`{"op":"pin","network":"blue","ip":%q,"endpoint":"evil"}`, a1))
	if !strings.Contains(out, `"refused"`) || !strings.Contains(out, "h1") {
		t.Fatalf("a pin of c1's address %s got %q, want a refusal naming h1", a1, out)
	}
	after := e.mustStatus(n.h1.host).Refused
	if after["raft_outside_malformed"] <= before["raft_outside_malformed"] {
		t.Fatalf("refusals %v → %v: the take naming h1 was not counted", before, after)
	}
	for _, h := range []*encHost{n.h1, n.h2} {
		if p, holder, err := e.logBlock(h, a1); err != nil || holder != "h1" {
			t.Fatalf("%s's log after the attacks: c1's %s in %s of %q (%v), want h1's", h.id, a1, p, holder, err)
		}
	}
	if got := e.epAddress(n.h1.host, "c1"); got != a1 {
		t.Fatalf("c1's address %s became %s", a1, got)
	}
	t.Logf("laptop's block %s; c1 %s stays in h1's block; refused %v", blk, a1, after)
}

// TestAdversaryNATBlockStranger: someone behind the same NAT with a key
// the servers do not know, on the laptop's tunnel address, asks for a
// block. WireGuard answers none of its handshakes, so no request reaches
// the block service and the log gives no block; the laptop's key on the
// same path gets one.
func TestAdversaryNATBlockStranger(t *testing.T) {
	e := newNetEnv(t, "nft", "wg", "wireguard-go", "socat")
	n := e.natServers()
	e.startNATServersStock(n)
	evil := e.genKey("wg", "evil")
	e.stockLaptop(n, evil.file, n.h1)
	for range 3 {
		if out := e.askBlocks(n, n.h1, `{"op":"take","network":"blue","subnet":"10.77.0.0/24","bits":28,"id":8}`); out != "" {
			t.Fatalf("a stranger's take got %q", out)
		}
	}
	blocks, err := e.logBlocks(n.h1)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.Host == "laptop" {
			t.Fatalf("after the stranger's takes the log holds %s for the laptop", b.Prefix)
		}
	}
	e.mustIn(n.lap.netns, "wg", "set", e.prefix+"wg", "private-key", n.lap.key.file)
	e.takeProbe(n, n.h1)
}
