package tests

// Restart without loss: a container's TAP outlives its daemon.
//
//   PFX-h1 vxwire (killed, restarted)               PFX-h2 vxwire (then the same)
//   PFX-c1 eth0 (config endpoint)                   PFX-c2 eth0 (vxwire attach)
//          + 10.88.0.1/32, 10.66.0.0/16 via .1            + 10.88.0.2/32, 10.66.0.0/16 via .1
//          (added by the container itself)
//   one TCP connection c1 -> c2, paced, SHA-256 of what was sent and received
//
// Each daemon in turn dies (kill -9, SIGTERM, or SIGTERM and a new binary)
// while the transfer runs and comes back at once. Before persistent TAPs,
// the container's eth0 vanished with the daemon's file descriptor, taking
// the addresses and routes the container had added, and the next daemon
// made a fresh eth0 with only its own address: the check of the
// container's own address while the daemon is dead failed.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// restartMode is how a daemon is taken down and brought back.
type restartMode int

const (
	restartKill     restartMode = iota // SIGKILL, start the same binary
	restartGraceful                    // SIGTERM, start the same binary
	restartUpgrade                     // SIGTERM, start another build
)

// Bounds of the restart tests.
const (
	flowSize    = 160 << 20 // bytes over the one connection
	flowChunk   = 512 << 10 // bytes the sender writes per flowTick
	flowTick    = 20 * time.Millisecond
	flowTimeout = 90 * time.Second // the whole transfer, restarts included
	restartBar  = 5 * time.Second  // kill to the new daemon's readiness
)

func TestRestartKillKeepsConnection(t *testing.T)     { testRestartKeeps(t, restartKill) }
func TestRestartGracefulKeepsConnection(t *testing.T) { testRestartKeeps(t, restartGraceful) }
func TestRestartUpgradeKeepsConnection(t *testing.T)  { testRestartKeeps(t, restartUpgrade) }

func testRestartKeeps(t *testing.T, mode restartMode) {
	e := newEnv(t)
	bin := vxwireBin
	if mode == restartUpgrade {
		bin = e.buildNext()
	}
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	cfg1 := e.writeConfig(h1, hostConf{peers: []*host{h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1}}})
	cfg2 := e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue}})
	d1, d2 := e.startDaemon(h1, cfg1), e.startDaemon(h2, cfg2)
	d1.waitReady("c1")
	d2.waitReady()
	ep2 := e.cliAttach(h2, "blue", c2, "c2")
	addr2 := prefixAddr(t, ep2.Address).String()
	addr1 := prefixAddr(t, endpointStatus(t, e.mustStatus(h1), "c1").Address).String()
	for i, c := range []*netns{c1, c2} {
		e.mustIn(c, "ip", "addr", "add", fmt.Sprintf("10.88.0.%d/32", i+1), "dev", "eth0")
		e.mustIn(c, "ip", "route", "add", "10.66.0.0/16", "via", blue.gateway, "dev", "eth0")
	}
	e.mustPing(c1, addr2)
	before := map[string]api.EndpointStatus{"c1": endpointStatus(t, e.mustStatus(h1), "c1"), "c2": endpointStatus(t, e.mustStatus(h2), "c2")}

	f := e.startFlow(c1, c2, addr2)
	for _, s := range []struct {
		d   **daemon
		cfg string
		c   *netns
		own string
	}{{&d1, cfg1, c1, "10.88.0.1/32"}, {&d2, cfg2, c2, "10.88.0.2/32"}} {
		at := f.received.Load() + 16<<20
		e.eventually(flowTimeout, fmt.Sprintf("%d MiB received", at>>20), func() error {
			if err := f.failed(); err != nil {
				return permanent(err)
			}
			if n := f.received.Load(); n < at {
				return fmt.Errorf("%d MiB received", n>>20)
			}
			return nil
		})
		old := *s.d
		h := old.h
		atKill := f.received.Load()
		start := time.Now()
		switch mode {
		case restartKill:
			old.kill()
		default:
			if err := old.stop(); err != nil {
				t.Fatalf("daemon %s on SIGTERM: %v", h.id, err)
			}
		}
		// The daemon has exited, so every descriptor it held is closed.
		e.checkKept(s.c, s.own, false)
		*s.d = e.startDaemonBin(bin, h, s.cfg)
		name := map[*netns]string{c1: "c1", c2: "c2"}[s.c]
		st := (*s.d).waitReady(name)
		down := time.Since(start)
		if down > restartBar {
			t.Errorf("restart of %s took %v", h.id, down)
		}
		t.Logf("%s: down %v (kill to status listing %s) with %d of %d MiB received; transfer in flight",
			h.id, down.Round(time.Millisecond), name, atKill>>20, flowSize>>20)
		if f.received.Load() >= flowSize {
			t.Fatalf("the transfer ended before the restart of %s: pace it slower", h.id)
		}
		if got, want := endpointStatus(t, st, name), before[name]; got.Address != want.Address || got.MAC != want.MAC {
			t.Errorf("after the restart %s is %s %s, was %s %s", name, got.Address, got.MAC, want.Address, want.MAC)
		}
		e.checkKept(s.c, s.own, true)
	}
	f.wait(t)
	e.mustPing(c1, addr2)
	e.mustPing(c2, addr1)
	if out := e.mustIn(c1, "ip", "-o", "link", "show"); strings.Count(out, "eth0") != 1 {
		t.Errorf("c1 links after the restarts:\n%s", out)
	}
}

// endpointStatus returns st's endpoint called name on blue.
func endpointStatus(t *testing.T, st api.Status, name string) api.EndpointStatus {
	t.Helper()
	for _, ep := range st.Endpoints {
		if ep.Name == name && ep.Network == blue.name {
			return ep
		}
	}
	t.Fatalf("status does not list %s: %+v", name, st.Endpoints)
	return api.EndpointStatus{}
}

// checkKept checks that c's eth0 is there with the daemon's address and
// the address own and the route 10.66.0.0/16 that the container added,
// with a carrier (a daemon holds it) when carrier is set, without one
// otherwise.
func (e *env) checkKept(c *netns, own string, carrier bool) {
	e.t.Helper()
	link, err := e.in(c, "ip", "-o", "link", "show", "eth0")
	if err != nil {
		e.t.Fatalf("%s: eth0 gone (carrier %v): %v\n%s", c.name, carrier, err, link)
	}
	if has := !strings.Contains(link, "NO-CARRIER"); has != carrier {
		e.t.Errorf("%s eth0 carrier %v, want %v: %s", c.name, has, carrier, link)
	}
	addrs := e.mustIn(c, "ip", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(addrs, own) || !strings.Contains(addrs, "10.77.0.") {
		e.t.Errorf("%s eth0 lost addresses: %s", c.name, addrs)
	}
	routes := e.mustIn(c, "ip", "route", "show")
	for _, want := range []string{"10.66.0.0/16 via " + blue.gateway, "default via " + blue.gateway} {
		if !strings.Contains(routes, want) {
			e.t.Errorf("%s lost route %q:\n%s", c.name, want, routes)
		}
	}
}

// buildNext builds the same source as vxwireBin into another file, with
// another version string, standing for an upgrade to a new binary.
func (e *env) buildNext() string {
	e.t.Helper()
	root, err := moduleRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	bin := filepath.Join(e.dir, "vxwire-next")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X main.version=next", "./cmd/vxwire")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("build the next binary: %v\n%s", err, out)
	}
	if out, _ := exec.Command(bin, "version").Output(); strings.TrimSpace(string(out)) != "vxwire next" {
		e.t.Fatalf("%s version: %q", bin, out)
	}
	return bin
}

// flow is one paced TCP transfer between two containers, hashed on both
// ends.
type flow struct {
	received atomic.Int64
	sendErr  chan error
	recv     chan flowResult
	sentSum  atomic.Value // string, once the sender is done
	fail     atomic.Value // error, the first of either end
}

type flowResult struct {
	sum string
	n   int64
	err error
}

// startFlow connects from c1 to a listener on addr in c2 and sends
// flowSize pseudo-random bytes, flowChunk every flowTick, so that daemons can die
// and come back while it runs.
func (e *env) startFlow(from, to *netns, addr string) *flow {
	e.t.Helper()
	conn, c := e.tcpPair(from, to, addr, time.Now().Add(flowTimeout))
	f := &flow{sendErr: make(chan error, 1), recv: make(chan flowResult, 1)}
	go func() {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(h, counter{&f.received}), c)
		if err != nil {
			f.fail.CompareAndSwap(nil, fmt.Errorf("receive: %w", err))
		}
		f.recv <- flowResult{hex.EncodeToString(h.Sum(nil)), n, err}
	}()
	go func() {
		h := sha256.New()
		src := rand.NewChaCha8([32]byte{'r', 's', 't'})
		buf := make([]byte, flowChunk)
		tick := time.NewTicker(flowTick) // the pace (25 MiB/s), not a wait
		defer tick.Stop()
		var err error
		for sent := 0; sent < flowSize && err == nil; sent += len(buf) {
			<-tick.C
			src.Read(buf)
			h.Write(buf)
			_, err = conn.Write(buf)
		}
		if err == nil {
			err = conn.CloseWrite()
		}
		if err != nil {
			f.fail.CompareAndSwap(nil, fmt.Errorf("send: %w", err))
		}
		f.sentSum.Store(hex.EncodeToString(h.Sum(nil)))
		f.sendErr <- err
	}()
	return f
}

// failed returns the first error of either end, or nil.
func (f *flow) failed() error {
	if err, ok := f.fail.Load().(error); ok {
		return err
	}
	return nil
}

// wait waits for both ends and fails t unless every byte arrived on the
// one connection with equal SHA-256 on both ends.
func (f *flow) wait(t *testing.T) {
	t.Helper()
	if err := <-f.sendErr; err != nil {
		t.Fatalf("send: %v (the connection broke)", err)
	}
	r := <-f.recv
	sum, _ := f.sentSum.Load().(string)
	if r.err != nil || r.n != flowSize || r.sum != sum {
		t.Fatalf("received %d of %d bytes (error %v), SHA-256 %s, sent %s", r.n, flowSize, r.err, r.sum, sum)
	}
	t.Logf("%d MiB on one connection, SHA-256 equal on both ends: %s", flowSize>>20, sum)
}

// counter is an io.Writer that counts bytes into n.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return len(b), nil
}
