package tests

// Attacks on the laptop's SOCKS5 proxy (see laptop_test.go for the
// topology): a client that trickles or sends garbage, a client that asks
// for a network the laptop's host endpoint is not on, and a client that
// asks for the outside when socks_outside = false. Each beside a probe
// that the same proxy serves what it should.

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vxwire/vxwire/internal/socks"
)

// TestAdversarySocksSlowloris holds 60 connections that sent one byte of
// a greeting and nothing more (slowloris) and 20 that sent an HTTP
// request instead of SOCKS. A well-behaved client is served meanwhile;
// then every bad one is cut off by the handshake deadline (10 s), and
// the daemon keeps serving. Without the deadline each slow client would
// hold a goroutine and a slot of the connection bound forever.
func TestAdversarySocksSlowloris(t *testing.T) {
	e := newEnv(t, "curl")
	l := e.startLaptop(laptopExtra{tables: hostEndpoint})
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web.blue:8000/f")

	var bad []net.Conn
	defer func() {
		for _, c := range bad {
			c.Close()
		}
	}()
	err := ns.WithNetNSPath(l.h2.path(), func(ns.NetNS) error {
		for i := range 80 {
			c, err := net.DialTimeout("tcp4", "127.0.0.1:1080", 5*time.Second)
			if err != nil {
				return err
			}
			bad = append(bad, c)
			if i < 60 {
				c.Write([]byte{socks.Version})
			} else {
				c.Write([]byte("GET http://web.blue:8000/f HTTP/1.1\r\nHost: web.blue\r\n\r\n"))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web.blue:8000/f")
	t.Logf("good client served in %v beside 80 bad ones", time.Since(start).Round(time.Millisecond))

	for i, c := range bad {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("bad client %d still connected after %v", i, time.Since(start))
		}
		if i >= 60 && n > 0 && n != 2 {
			t.Fatalf("garbage client %d got %d bytes back", i, n)
		}
	}
	t.Logf("80 bad clients cut off within %v", time.Since(start).Round(time.Millisecond))
	if st := e.mustStatus(l.h2); st.Socks == nil || st.Socks.BadHandshake < 80 {
		t.Fatalf("socks status %+v, want at least 80 bad handshakes", st.Socks)
	}
	if !l.d2.running() {
		t.Fatal("daemon exited")
	}
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web.blue:8000/f")
}

// TestAdversarySocksUnattachedNetwork: the laptop carries networks blue
// (with its host endpoint) and red (without). A SOCKS client asks for a
// red container by NAME.NETWORK, by NAME and by address: each is refused
// with "network unreachable" (0x03), and never dialled from the host,
// while the same client reaches blue's container.
func TestAdversarySocksUnattachedNetwork(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c3 := e.container("c1"), e.container("c3")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers: []*host{h2}, networks: []netConf{blue, red},
		endpoints: []epConf{
			{network: "blue", name: "web", ns: c1, addr: "10.77.0.10"},
			{network: "red", name: "db", ns: c3, addr: "10.78.0.10"},
		},
	}))
	cfg := e.render(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue, red}})
	cfg = strings.Replace(cfg, "[host]\n", "[host]\nsocks = \"127.0.0.1:1080\"\n", 1) + hostEndpoint
	d2 := e.startDaemon(h2, e.file(h2.id+".toml", cfg))
	d1.waitReady("web", "db")
	d2.waitReady("laptop")
	e.serveHTTP(c1, "10.77.0.10:8000", []byte("blue"))
	e.serveHTTP(c3, "10.78.0.10:8000", []byte("red"))

	// Probe: blue is reachable.
	e.mustSocksReply(h2.netns, socks.Addr{Name: "web.blue", Port: 8000}, socks.RepSucceeded)
	// Wait until h2 knows db's record (db.red answers "host unreachable"
	// until then), so that the refusals are about the missing host
	// endpoint, not a missing name.
	e.mustSocksReply(h2.netns, socks.Addr{Name: "db.red", Port: 8000}, socks.RepNetUnreachable)
	for _, dst := range []socks.Addr{
		{Name: "db.red", Port: 8000},
		{Name: "db", Port: 8000},
		{IP: netip.MustParseAddr("10.78.0.10"), Port: 8000},
	} {
		rep, c, err := e.socksRequest(h2.netns, dst)
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
		c.Close()
		if rep != socks.RepNetUnreachable {
			t.Fatalf("CONNECT %s: reply %d, want %d (network unreachable)", dst, rep, socks.RepNetUnreachable)
		}
	}
	e.mustSocksReply(h2.netns, socks.Addr{Name: "web", Port: 8000}, socks.RepSucceeded)
}

// TestAdversarySocksOutsideRefused: with socks_outside = false a SOCKS
// client asks for a server outside the overlay that the laptop's host can
// reach (h1's underlay address): refused with "connection not allowed by
// ruleset" (0x02). The probes: the host reaches that server directly, and
// the proxy still serves overlay names.
func TestAdversarySocksOutsideRefused(t *testing.T) {
	e := newEnv(t, "curl")
	l := e.startLaptop(laptopExtra{hostKeys: "socks_outside = false\n", tables: hostEndpoint})
	outside := l.file[:1<<20]
	e.serveHTTP(l.h1.netns, "198.18.0.1:9000", outside)
	e.fetch(l.h2.netns, outside, "http://198.18.0.1:9000/f")
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web.blue:8000/f")
	for _, dst := range []socks.Addr{
		{IP: netip.MustParseAddr("198.18.0.1"), Port: 9000},
		{Name: "localhost", Port: 1080},
	} {
		rep, c, err := e.socksRequest(l.h2.netns, dst)
		if err != nil {
			t.Fatalf("%s: %v", dst, err)
		}
		c.Close()
		if rep != socks.RepNotAllowed {
			t.Fatalf("CONNECT %s: reply %d, want %d (not allowed by ruleset)", dst, rep, socks.RepNotAllowed)
		}
	}
	if out, err := e.in(l.h2.netns, "curl", "-sS", "--max-time", "10", "--socks5", "127.0.0.1:1080", "http://198.18.0.1:9000/f"); err == nil {
		t.Fatalf("curl through the proxy to the outside succeeded: %d bytes", len(out))
	}
}

// TestAdversaryHostEndpointOnlyExposes: a container dials the laptop's
// host endpoint on the ports of the laptop's own loopback services (the
// SOCKS proxy 1080, the forward 8080, a service on 3001 that is not
// exposed): each is refused, so a container cannot borrow the laptop's
// proxy or reach its host services. The probe: the exposed port 3000
// answers.
func TestAdversaryHostEndpointOnlyExposes(t *testing.T) {
	e := newEnv(t, "curl")
	l := e.startLaptop(laptopExtra{tables: hostEndpoint})
	local := l.file[:1<<20]
	e.serveHTTP(l.h2.netns, "127.0.0.1:3000", local)
	e.serveHTTP(l.h2.netns, "127.0.0.1:3001", local)
	e.fetch(l.c1, local, "http://laptop:3000/f")
	for _, port := range []string{"1080", "8080", "3001"} {
		out, err := e.in(l.c1, "curl", "-sS", "--max-time", "5", "http://10.77.0.50:"+port+"/f")
		if err == nil {
			t.Fatalf("container reached the laptop's port %s: %d bytes", port, len(out))
		}
		// curl's exit status 7: the connection was refused (a RST from
		// the host endpoint's stack), not timed out (28).
		if !strings.Contains(err.Error(), "exit status 7") {
			t.Fatalf("port %s: want connection refused, got %v", port, err)
		}
	}
}
