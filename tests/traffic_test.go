package tests

// Traffic helpers: ICMP with ping, TCP transfers with SHA-256 checks and
// raw UDP datagrams, each from inside a namespace. A socket keeps the
// namespace it was created in, so sockets are created inside ns.Do and used
// from any goroutine afterwards.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// reachTimeout bounds the wait for the first reply across a new path.
const reachTimeout = 30 * time.Second

// mustPing waits until from gets a first reply from ip, then requires
// `ping -c 3 -W 1` to get all three replies.
func (e *env) mustPing(from *netns, ip string) {
	e.t.Helper()
	e.eventually(reachTimeout, fmt.Sprintf("first reply from %s to %s", ip, from.name), func() error {
		_, err := e.in(from, "ping", "-c", "1", "-W", "1", ip)
		return err
	})
	out, err := e.in(from, "ping", "-c", "3", "-W", "1", ip)
	if err != nil || !strings.Contains(out, " 3 received") {
		e.t.Fatalf("ping from %s to %s: want 3 replies out of 3: %v\n%s", from.name, ip, err, out)
	}
}

// mustNotPing requires `ping -c 3 -W 1` from from to ip to send its three
// requests and get no reply.
func (e *env) mustNotPing(from *netns, ip string) {
	e.t.Helper()
	out, err := e.in(from, "ping", "-c", "3", "-W", "1", ip)
	if err == nil || !strings.Contains(out, "3 packets transmitted, 0 received") {
		e.t.Fatalf("ping from %s to %s: want 3 requests sent and no reply: %v\n%s", from.name, ip, err, out)
	}
}

// transfer sends size bytes of pseudo-random data over one TCP connection
// from namespace from to a listener on ip in namespace to, and fails the
// test unless it completes within timeout and the SHA-256 of the bytes
// received equals that of the bytes sent.
func (e *env) transfer(from, to *netns, ip string, size int64, timeout time.Duration) {
	e.t.Helper()
	data := io.LimitReader(rand.NewChaCha8([32]byte{'v', 'x', 'w'}), size)
	if sent, _ := e.transferFrom(from, to, ip, data, timeout); sent != size {
		e.t.Fatalf("transfer %s -> %s: sent %d bytes, want %d", from.name, to.name, sent, size)
	}
}

// transferFrom sends everything src yields over one TCP connection from
// namespace from to a listener on ip in namespace to, and fails the test
// unless it completes within timeout and the SHA-256 of the bytes received
// equals that of the bytes sent. It returns how many bytes were sent and
// how long that took.
func (e *env) transferFrom(from, to *netns, ip string, src io.Reader, timeout time.Duration) (int64, time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	conn, c := e.tcpPair(from, to, ip, deadline)
	type result struct {
		sum string
		n   int64
		err error
	}
	received := make(chan result, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, c)
		received <- result{hex.EncodeToString(h.Sum(nil)), n, err}
	}()

	start := time.Now()
	h := sha256.New()
	sent, err := io.CopyBuffer(io.MultiWriter(conn, h), src, make([]byte, 256<<10))
	if err == nil {
		err = conn.CloseWrite()
	}
	if err != nil {
		e.t.Fatalf("send from %s to %s: failed after %d bytes: %v", from.name, conn.RemoteAddr(), sent, err)
	}
	r := <-received
	elapsed := time.Since(start)
	if r.err != nil {
		e.t.Fatalf("receive in %s: got %d of %d bytes: %v", to.name, r.n, sent, r.err)
	}
	if want := hex.EncodeToString(h.Sum(nil)); r.n != sent || r.sum != want {
		e.t.Fatalf("transfer %s -> %s: received %d bytes with SHA-256 %s, sent %d bytes with SHA-256 %s",
			from.name, to.name, r.n, r.sum, sent, want)
	}
	e.t.Logf("%d MiB from %s to %s in %v (%.0f Mbit/s), SHA-256 equal",
		sent>>20, from.name, to.name, elapsed.Round(time.Millisecond), float64(sent)*8/elapsed.Seconds()/1e6)
	return sent, elapsed
}

// tcpPair listens on ip (a port chosen by the kernel) in namespace to,
// connects to it from namespace from, and returns both ends of the one
// connection, each with deadline set; the test's cleanup closes them.
func (e *env) tcpPair(from, to *netns, ip string, deadline time.Time) (dialled *net.TCPConn, accepted net.Conn) {
	e.t.Helper()
	var ln *net.TCPListener
	err := ns.WithNetNSPath(to.path(), func(ns.NetNS) error {
		addr, err := net.ResolveTCPAddr("tcp4", net.JoinHostPort(ip, "0"))
		if err == nil {
			ln, err = net.ListenTCP("tcp4", addr)
		}
		return err
	})
	if err != nil {
		e.t.Fatalf("listen on %s in %s: %v", ip, to.name, err)
	}
	defer ln.Close()
	_ = ln.SetDeadline(deadline)
	err = ns.WithNetNSPath(from.path(), func(ns.NetNS) error {
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err == nil {
			dialled = c.(*net.TCPConn)
		}
		return err
	})
	if err != nil {
		e.t.Fatalf("connect from %s to %s: %v", from.name, ln.Addr(), err)
	}
	e.t.Cleanup(func() { dialled.Close() })
	// The kernel completed the handshake: Accept returns at once.
	if accepted, err = ln.Accept(); err != nil {
		e.t.Fatalf("accept in %s: %v", to.name, err)
	}
	e.t.Cleanup(func() { accepted.Close() })
	_ = dialled.SetDeadline(deadline)
	_ = accepted.SetDeadline(deadline)
	return dialled, accepted
}

// sendUDP sends each payload as one datagram from src (an address of
// namespace n, port chosen by the kernel) to dst.
func (e *env) sendUDP(n *netns, src string, dst netip.AddrPort, payloads ...[]byte) {
	e.t.Helper()
	var pc *net.UDPConn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		pc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(src), 0)))
		return err
	})
	if err != nil {
		e.t.Fatalf("udp socket on %s in %s: %v", src, n.name, err)
	}
	defer pc.Close()
	for _, p := range payloads {
		if _, err := pc.WriteToUDPAddrPort(p, dst); err != nil {
			e.t.Fatalf("send %d bytes from %s to %v: %v", len(p), src, dst, err)
		}
	}
}
