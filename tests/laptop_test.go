package tests

// The laptop doors: a host endpoint on h2 (no TAP, no namespace of its
// own: the daemon's userspace stack), reached through SOCKS5, a
// [[forward]] and an [[expose]].
//
//   PFX-h1 (server)                         PFX-h2 (laptop)
//   PFX-c1: web 10.77.0.10                  daemon: host endpoint laptop 10.77.0.50
//     HTTP :8000 serves a file                socks 127.0.0.1:1080
//   198.18.0.1 (underlay) HTTP :9000          forward 127.0.0.1:8080 → web:8000
//                                             expose :3000 → 127.0.0.1:3000 (HTTP)

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vxwire/vxwire/internal/socks"
)

// laptopFileSize is the size of the files the tests fetch.
const laptopFileSize = 4 << 20

// laptop is the two-host world of the laptop tests.
type laptop struct {
	h1, h2 *host
	c1     *netns
	d1, d2 *daemon
	file   []byte // what c1 and the laptop's local service serve
	cfg    string // h2's config file text
}

// laptopExtra is what the laptop's config adds to the harness's: [host]
// keys and tables.
type laptopExtra struct {
	hostKeys string // lines added to [host]
	tables   string // tables appended
}

// hostEndpoint is the laptop's host endpoint on blue, with exposes and a
// forward.
const hostEndpoint = `
[[endpoint]]
network = "blue"
name = "laptop"
address = "10.77.0.50"

[[forward]]
network = "blue"
listen = "127.0.0.1:8080"
to = "web:8000"

[[expose]]
network = "blue"
port = 3000
to = "127.0.0.1:3000"
`

// serveHTTP serves body at /f on a TCP listener on addr inside n, until
// the test ends.
func (e *env) serveHTTP(n *netns, addr string, body []byte) {
	e.t.Helper()
	var ln net.Listener
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		e.t.Fatalf("listen on %s in %s: %v", addr, n.name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(body))
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	e.t.Cleanup(func() { srv.Close() })
}

// startLaptop starts h1 with container web serving a file and h2 with
// the host endpoint, the SOCKS proxy and extra.
func (e *env) startLaptop(extra laptopExtra) *laptop {
	e.t.Helper()
	l := &laptop{file: make([]byte, laptopFileSize)}
	rng := rand.NewChaCha8([32]byte{'l', 'a', 'p'})
	rng.Read(l.file)
	l.h1, l.h2 = e.twoHosts()
	l.c1 = e.container("c1")
	l.d1 = e.startDaemon(l.h1, e.writeConfig(l.h1, hostConf{
		peers: []*host{l.h2}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "web", ns: l.c1, addr: "10.77.0.10"}},
	}))
	cfg := e.render(l.h2, hostConf{peers: []*host{l.h1}, networks: []netConf{blue}})
	cfg = strings.Replace(cfg, "[host]\n", "[host]\nsocks = \"127.0.0.1:1080\"\n"+extra.hostKeys, 1)
	cfg += extra.tables
	l.cfg = cfg
	l.d2 = e.startDaemon(l.h2, e.file(l.h2.id+".toml", cfg))
	l.d1.waitReady("web")
	l.d2.waitReady("laptop")
	e.serveHTTP(l.c1, "10.77.0.10:8000", l.file)
	return l
}

// fetch runs curl with args inside n and fails unless it returns want,
// compared by SHA-256. It retries until records have spread.
func (e *env) fetch(n *netns, want []byte, args ...string) {
	e.t.Helper()
	wantSum := sha256.Sum256(want)
	e.eventually(30*time.Second, "curl "+strings.Join(args, " "), func() error {
		out, err := e.in(n, append([]string{"curl", "-sS", "--max-time", "20"}, args...)...)
		if err != nil {
			return err
		}
		if sum := sha256.Sum256([]byte(out)); sum != wantSum {
			return permanent(fmt.Errorf("got %d bytes with SHA-256 %s, want %d bytes with %s",
				len(out), hex.EncodeToString(sum[:]), len(want), hex.EncodeToString(wantSum[:])))
		}
		e.t.Logf("curl %s: %d bytes, SHA-256 equal", strings.Join(args, " "), len(out))
		return nil
	})
}

// socksHello is what a SOCKS5 client sends first: its greeting offering
// no authentication, then its request for cmd to dst (RFC 1928 §3, §4).
func socksHello(cmd byte, dst socks.Addr) []byte {
	return socks.AppendAddr([]byte{socks.Version, 1, socks.MethodNoAuth, socks.Version, cmd, 0}, dst)
}

// socksRequest connects to the SOCKS server at 127.0.0.1:1080 inside n,
// sends a CONNECT for dst and returns the reply code (and the open
// connection, which the caller closes).
func (e *env) socksRequest(n *netns, dst socks.Addr) (byte, net.Conn, error) {
	var c net.Conn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		c, err = net.DialTimeout("tcp4", "127.0.0.1:1080", 5*time.Second)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(socksHello(socks.CmdConnect, dst)); err != nil {
		c.Close()
		return 0, nil, err
	}
	var head [2 + 4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		c.Close()
		return 0, nil, fmt.Errorf("no reply: %w", err)
	}
	rest := 6 // IPv4 address and port
	if head[5] == 4 {
		rest = 18
	}
	if _, err := io.ReadFull(c, make([]byte, rest)); err != nil {
		c.Close()
		return 0, nil, fmt.Errorf("short reply: %w", err)
	}
	c.SetDeadline(time.Time{})
	return head[3], c, nil
}

// mustSocksReply polls until a CONNECT to dst from n gets reply want.
func (e *env) mustSocksReply(n *netns, dst socks.Addr, want byte) {
	e.t.Helper()
	e.eventually(30*time.Second, fmt.Sprintf("socks connect %s replies %d", dst, want), func() error {
		rep, c, err := e.socksRequest(n, dst)
		if err != nil {
			return err
		}
		c.Close()
		if rep != want {
			return fmt.Errorf("reply %d", rep)
		}
		return nil
	})
}

// TestLaptopDoors fetches a container's file from the laptop through
// SOCKS5 (by NAME.NETWORK, by NAME alone and by address) and through a
// [[forward]], fetches an outside server through SOCKS, and fetches the
// laptop's exposed local service from the container by the laptop's
// name; every transfer is compared by SHA-256.
func TestLaptopDoors(t *testing.T) {
	e := newEnv(t, "curl")
	l := e.startLaptop(laptopExtra{tables: hostEndpoint})
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web.blue:8000/f")
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web:8000/f")
	e.fetch(l.h2.netns, l.file, "--socks5", "127.0.0.1:1080", "http://10.77.0.10:8000/f")
	e.fetch(l.h2.netns, l.file, "http://127.0.0.1:8080/f")

	// An outside destination, dialled from the laptop's host (its
	// underlay), as socks_outside = true (the default) allows.
	e.serveHTTP(l.h1.netns, "198.18.0.1:9000", l.file[:1<<20])
	e.fetch(l.h2.netns, l.file[:1<<20], "--socks5-hostname", "127.0.0.1:1080", "http://198.18.0.1:9000/f")

	// The exposed port, by the laptop's name from the container.
	local := l.file[1<<20:]
	e.serveHTTP(l.h2.netns, "127.0.0.1:3000", local)
	e.fetch(l.c1, local, "http://laptop:3000/f")
	e.fetch(l.c1, local, "http://laptop.blue:3000/f")
	e.mustPing(l.c1, "10.77.0.50")
}

// TestLaptopUDPForward relays datagrams both ways through a UDP
// [[forward]] and SOCKS5 UDP ASSOCIATE to an echo server in the
// container, and from the container through a UDP [[expose]] to an echo
// server on the laptop.
func TestLaptopUDPForward(t *testing.T) {
	e := newEnv(t)
	l := e.startLaptop(laptopExtra{tables: hostEndpoint + `
[[forward]]
network = "blue"
listen = "127.0.0.1:5353"
to = "web:7"
proto = "udp"

[[expose]]
network = "blue"
port = 7
to = "127.0.0.1:7007"
proto = "udp"
`})
	e.udpEcho(l.h2.netns, "127.0.0.1:7007")
	e.eventually(30*time.Second, "udp expose echoes", func() error {
		return udpEchoIn(l.c1, "10.77.0.50:7", nil)
	})
	e.udpEcho(l.c1, "10.77.0.10:7")
	e.eventually(30*time.Second, "udp forward echoes", func() error {
		return udpEchoIn(l.h2.netns, "127.0.0.1:5353", nil)
	})
	e.eventually(30*time.Second, "socks udp associate echoes", func() error {
		rep, c, err := e.socksUDP(l.h2.netns)
		if err != nil {
			return err
		}
		defer c.Close()
		if rep.port == 0 {
			return fmt.Errorf("no relay address")
		}
		return udpEchoIn(l.h2.netns, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rep.port).String(),
			socks.AppendUDPHeader(nil, socks.Addr{Name: "web.blue", Port: 7}))
	})
}

type udpRelay struct{ port uint16 }

// udpEcho echoes datagrams on addr inside n until the test ends.
func (e *env) udpEcho(n *netns, addr string) {
	e.t.Helper()
	var echo net.PacketConn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		echo, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
}

// socksUDP opens a UDP association at the SOCKS server in n and returns
// the relay's port and the control connection.
func (e *env) socksUDP(n *netns) (udpRelay, net.Conn, error) {
	var c net.Conn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		c, err = net.DialTimeout("tcp4", "127.0.0.1:1080", 5*time.Second)
		return err
	})
	if err != nil {
		return udpRelay{}, nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(socksHello(socks.CmdUDPAssociate, socks.Addr{IP: netip.IPv4Unspecified()}))
	var rep [2 + 10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil || rep[3] != socks.RepSucceeded {
		c.Close()
		return udpRelay{}, nil, fmt.Errorf("udp associate: reply %x, %v", rep, err)
	}
	c.SetDeadline(time.Time{})
	return udpRelay{port: uint16(rep[10])<<8 | uint16(rep[11])}, c, nil
}

// udpEchoIn sends a datagram (hdr, then a payload) to addr from inside n
// and checks the echo carries the payload.
func udpEchoIn(n *netns, addr string, hdr []byte) error {
	var u net.Conn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		u, err = net.Dial("udp4", addr)
		return err
	})
	if err != nil {
		return err
	}
	defer u.Close()
	payload := []byte("vxwire-udp-echo")
	u.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := u.Write(append(append([]byte(nil), hdr...), payload...)); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	k, err := u.Read(buf)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(buf[:k], payload) {
		return fmt.Errorf("echo %q", buf[:k])
	}
	return nil
}

// TestLaptopDoorsReload moves a forward to another port by SIGHUP: the new
// port reaches web, the old one is closed, and the SOCKS proxy and the
// expose keep serving.
func TestLaptopDoorsReload(t *testing.T) {
	e := newEnv(t, "curl")
	l := e.startLaptop(laptopExtra{tables: hostEndpoint})
	e.fetch(l.h2.netns, l.file, "http://127.0.0.1:8080/f")
	e.file(l.h2.id+".toml", strings.Replace(l.cfg, `listen = "127.0.0.1:8080"`, `listen = "127.0.0.1:8081"`, 1))
	l.d2.signal(syscall.SIGHUP)
	e.fetch(l.h2.netns, l.file, "http://127.0.0.1:8081/f")
	if out, err := e.in(l.h2.netns, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:8080/f"); err == nil {
		t.Fatalf("the old forward port still answers: %d bytes", len(out))
	}
	e.fetch(l.h2.netns, l.file, "--socks5-hostname", "127.0.0.1:1080", "http://web.blue:8000/f")
	local := l.file[:1<<20]
	e.serveHTTP(l.h2.netns, "127.0.0.1:3000", local)
	e.fetch(l.c1, local, "http://laptop:3000/f")
}
