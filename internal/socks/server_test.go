package socks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// newTestServer serves SOCKS on loopback with dial and returns its
// address; the server is closed at cleanup.
func newTestServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, cfg, nil)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// echoTCP listens on loopback and echoes every connection.
func echoTCP(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// hostDial dials IP destinations from the host and refuses names.
func hostDial(ctx context.Context, network string, dst Addr) (net.Conn, error) {
	if dst.Name != "" {
		return nil, Refuse(RepNotAllowed, errors.New("no names here"))
	}
	var d net.Dialer
	return d.DialContext(ctx, network, dst.String())
}

// handshake sends a greeting and a request on c and returns the reply.
func clientRequest(t *testing.T, c net.Conn, req Request) (byte, netip.AddrPort) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(AppendRequest([]byte{5, 1, 0}, req)); err != nil {
		t.Fatal(err)
	}
	var choice [2]byte
	if _, err := io.ReadFull(c, choice[:]); err != nil || choice != [2]byte{5, 0} {
		t.Fatalf("method choice %x, %v", choice, err)
	}
	var hdr [3]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("reply: %v", err)
	}
	var at [1]byte
	io.ReadFull(c, at[:])
	a, err := readAddr(c, at[0])
	if err != nil {
		t.Fatalf("reply address: %v", err)
	}
	c.SetDeadline(time.Time{})
	return hdr[1], netip.AddrPortFrom(a.IP, a.Port)
}

func TestConnectRelays(t *testing.T) {

	echo := echoTCP(t)
	_, addr := newTestServer(t, Config{Dial: hostDial})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rep, _ := clientRequest(t, c, Request{CmdConnect, Addr{IP: echo.Addr(), Port: echo.Port()}}); rep != RepSucceeded {
		t.Fatalf("reply %d", rep)
	}
	c.Write([]byte("ping"))
	var got [4]byte
	if _, err := io.ReadFull(c, got[:]); err != nil || string(got[:]) != "ping" {
		t.Fatalf("echo %q, %v", got, err)
	}
}

func TestConnectRefusalReply(t *testing.T) {
	_, addr := newTestServer(t, Config{Dial: hostDial})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rep, _ := clientRequest(t, c, Request{CmdConnect, Addr{Name: "example.com", Port: 80}}); rep != RepNotAllowed {
		t.Fatalf("reply %d, want %d (not allowed)", rep, RepNotAllowed)
	}
}

// TestSlowClientsDoNotStarveOthers opens slow clients that send one byte
// and then nothing (slowloris), and clients that send garbage; each is
// cut off by the handshake deadline, and a well-behaved client is served
// meanwhile.
func TestSlowClientsDoNotStarveOthers(t *testing.T) {
	echo := echoTCP(t)
	s, addr := newTestServer(t, Config{Dial: hostDial, HandshakeTimeout: 300 * time.Millisecond, MaxConns: 64})
	var slow []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{5})
		slow = append(slow, c)
	}
	g, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	good, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if rep, _ := clientRequest(t, good, Request{CmdConnect, Addr{IP: echo.Addr(), Port: echo.Port()}}); rep != RepSucceeded {
		t.Fatalf("good client: reply %d", rep)
	}
	for i, c := range append(slow, g) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		// EOF or a reset (the garbage client's unread bytes): closed.
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("client %d not cut off: %v", i, err)
		}
	}
	if st := s.Stats(); st.BadHandshake < 41 {
		t.Fatalf("bad handshakes %d, want 41", st.BadHandshake)
	}
}

func TestMaxConns(t *testing.T) {
	s, addr := newTestServer(t, Config{Dial: hostDial, MaxConns: 2, HandshakeTimeout: 5 * time.Second})
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(third); err != nil {
		t.Fatalf("third client not closed: %v", err)
	}
	if s.Stats().OverLimit != 1 {
		t.Fatalf("over limit %d, want 1", s.Stats().OverLimit)
	}
}

func TestUDPAssociate(t *testing.T) {

	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	echoAP := netip.MustParseAddrPort(echo.LocalAddr().String())
	_, addr := newTestServer(t, Config{Dial: hostDial})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, relayAP := clientRequest(t, c, Request{CmdUDPAssociate, Addr{IP: netip.IPv4Unspecified()}})
	if rep != RepSucceeded {
		t.Fatalf("reply %d", rep)
	}
	u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(relayAP))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	dst := Addr{IP: echoAP.Addr(), Port: echoAP.Port()}
	u.Write(append(AppendUDPHeader(nil, dst), "hello"...))
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	n, err := u.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	from, payload, err := ParseUDP(buf[:n])
	if err != nil || from != dst || string(payload) != "hello" {
		t.Fatalf("answer from %v: %q, %v", from, payload, err)
	}
	c.Close()
}
