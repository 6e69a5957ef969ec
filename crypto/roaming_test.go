package crypto

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// A host behind NAT: the server knows its key and tunnel address but not
// its endpoint, and learns it from the host's first handshake, which the
// host's persistent keepalive starts without any traffic.
func TestRoamingPeerLearntFromKeepalive(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	srv, laptop := newNode(t, 1), newNode(t, 2)
	laptop.id = netip.AddrPortFrom(laptop.tunnel, laptop.id.Port()) // known by its tunnel address
	srv.start(t, nil)
	laptop.start(t, nil)

	roaming := laptop.peer()
	roaming.Endpoint = netip.AddrPort{}
	cfg := srv.dev.config()
	cfg.Peers = []Peer{roaming}
	if err := srv.dev.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	server := srv.peer()
	server.Keepalive = time.Second
	cfg = laptop.dev.config()
	cfg.Peers = []Peer{server}
	if err := laptop.dev.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if s, _ := laptop.dev.wg.IpcGet(); !strings.Contains(s, "persistent_keepalive_interval=1\n") {
		t.Fatalf("keepalive not installed:\n%s", s)
	}

	// The server knows no endpoint yet; the keepalive's handshake teaches it.
	eventually(t, 15*time.Second, "the server to learn the laptop's endpoint", func() bool {
		st := srv.dev.Status()
		return len(st) == 1 && st[0].Endpoint == laptop.peer().Endpoint
	})
	sendBatch(t, srv, laptop.id, 0, 10, 200)
	if n := checkReceived(t, laptop.collect(10, 5*time.Second), srv.id, 0, 10, 200); n != 10 {
		t.Fatalf("server → roaming laptop: %d/10 arrived", n)
	}
	sendBatch(t, laptop, srv.id, 0, 10, 200)
	if n := checkReceived(t, srv.collect(10, 5*time.Second), laptop.id, 0, 10, 200); n != 10 {
		t.Fatalf("roaming laptop → server: %d/10 arrived", n)
	}
}

func TestKeepaliveValidation(t *testing.T) {
	n := newNode(t, 1)
	o := newNode(t, 2)
	for _, d := range []time.Duration{-time.Second, 1500 * time.Millisecond, maxKeepalive + time.Second} {
		p := Peer{PublicKey: o.key.Public(), TunnelAddr: o.tunnel, ID: o.id, Keepalive: d}
		cfg := Config{PrivateKey: n.key, TunnelAddr: n.tunnel, Peers: []Peer{p}}
		if _, err := cfg.normalized(); err == nil {
			t.Errorf("keepalive %v accepted", d)
		}
	}
}

// config returns a copy of d's configuration.
func (d *Device) config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}
