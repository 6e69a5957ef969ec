package crypto

import (
	"context"
	"encoding/binary"
	"io"
	"net"
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
	srv, laptop := roamingPair(t, nil, time.Second)
	if s, _ := laptop.dev.wg.IpcGet(); !strings.Contains(s, "persistent_keepalive_interval=1\n") {
		t.Fatalf("keepalive not installed:\n%s", s)
	}

	// The server knows no endpoint yet; the keepalive's handshake teaches it.
	eventually(t, 15*time.Second, "the server to learn the laptop's endpoint", func() bool {
		st := srv.dev.Status()
		return len(st) == 1 && st[0].Endpoint == laptop.peer().Endpoint
	})
	sendBatch(t, srv, laptop.id, 0, 10, 200)
	if n := laptop.receive(t, srv.id, 0, 10, 200, 5*time.Second); n != 10 {
		t.Fatalf("server → roaming laptop: %d/10 arrived", n)
	}
	sendBatch(t, laptop, srv.id, 0, 10, 200)
	if n := srv.receive(t, laptop.id, 0, 10, 200, 5*time.Second); n != 10 {
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

// roamingPair starts a server and a laptop, both with mod, where the
// server knows the laptop by key and tunnel address only (its ID is the
// tunnel address, no endpoint) and the laptop knows the server's endpoint
// and keeps it alive every keepalive.
func roamingPair(t *testing.T, mod func(*Config), keepalive time.Duration) (srv, laptop *node) {
	t.Helper()
	srv, laptop = newNode(t, 1), newNode(t, 2)
	laptop.id = netip.AddrPortFrom(laptop.tunnel, laptop.id.Port()) // known by its tunnel address
	srv.start(t, mod)
	laptop.start(t, mod)
	roaming := laptop.peer()
	roaming.Endpoint = netip.AddrPort{}
	cfg := srv.dev.config()
	cfg.Peers = []Peer{roaming}
	if err := srv.dev.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	server := srv.peer()
	server.Keepalive = keepalive
	cfg = laptop.dev.config()
	cfg.Peers = []Peer{server}
	if err := laptop.dev.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	return srv, laptop
}

// config returns a copy of d's configuration.
func (d *Device) config() Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// The inner stacks of two devices talk TCP inside the tunnel (UDP:
// TestInnerForgedSourceDropped), from the laptop, whose endpoint the
// server learns, to the server and back; VXLAN still goes to Read.
func TestInnerStackThroughTunnel(t *testing.T) {
	srv, laptop := roamingPair(t, func(c *Config) { c.InnerPort = 7946 }, 0)

	ln, err := srv.dev.Inner().ListenTCP(7946)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		if _, err := io.ReadFull(c, b); err == nil {
			c.Write(append(b, '!'))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := laptop.dev.Inner().DialTCP(ctx, netip.AddrPortFrom(srv.tunnel, 7946))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	got := make([]byte, 6)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello!" {
		t.Fatalf("inner tcp: %q %v", got, err)
	}
	// VXLAN to the roaming laptop still reaches Read.
	sendBatch(t, srv, laptop.id, 0, 5, 200)
	if n := laptop.receive(t, srv.id, 0, 5, 200, 5*time.Second); n != 5 {
		t.Fatalf("vxlan beside the inner stack: %d/5", n)
	}
}

// innerUDP returns the IPv4/UDP packet from src to dst:port carrying
// payload, as a peer's inner stack would send it.
func innerUDP(src, dst netip.Addr, port uint16, payload []byte) []byte {
	b := make([]byte, InnerOverhead+len(payload))
	wrap(b, payload, src.As4(), dst.As4())
	binary.BigEndian.PutUint16(b[ipv4HeaderLen+2:], port)
	return b
}

// TestInnerForgedSourceDropped: peer m sends the server inner packets
// that claim peer a's tunnel address, the address the server gossips
// with a by. WireGuard's allowed-ips bind an inner source to the key that
// sent it, so none reaches the server's inner stack, while m's packets
// from its own tunnel address, sent after each forged one on the same
// session, arrive and are counted.
func TestInnerForgedSourceDropped(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	srv, a, m := newNode(t, 1), newNode(t, 2), newNode(t, 3)
	inner := func(c *Config) { c.InnerPort = 7946 }
	srv.start(t, inner)
	a.start(t, inner)
	m.start(t, nil)
	connect(t, srv, a, m)
	u, err := srv.dev.Inner().ListenUDP(7946)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	forged := innerUDP(a.tunnel, srv.tunnel, 7946, []byte("forged"))
	genuine := innerUDP(m.tunnel, srv.tunnel, 7946, []byte("genuine"))
	b := make([]byte, 100)
	got := 0
	for deadline := time.Now().Add(15 * time.Second); got < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("%d genuine inner packets arrived, want 3", got)
		}
		m.dev.sendInner(forged)
		m.dev.sendInner(genuine)
		u.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			n, from, err := u.ReadFrom(b)
			if err != nil {
				break
			}
			if string(b[:n]) != "genuine" || from.(*net.UDPAddr).AddrPort().Addr().Unmap() != m.tunnel {
				t.Fatalf("the server's inner stack took %q from %v", b[:n], from)
			}
			got++
		}
	}
	if s := srv.dev.Stats(); s.InnerRxPackets < uint64(got) || s.InnerRxPackets > m.dev.Stats().InnerTxPackets/2 {
		t.Fatalf("server counted %d inner packets in, %d genuine arrived, m sent %d", s.InnerRxPackets, got, m.dev.Stats().InnerTxPackets)
	}
}
