package relay

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestPipeHalfClose: a client that half-closes after its request still
// reads the whole answer, and Pipe counts the bytes of each way.
func TestPipeHalfClose(t *testing.T) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	type counts struct{ ab, ba int64 }
	done := make(chan counts)
	go func() {
		ab, ba := Pipe(a, b, 0)
		done <- counts{ab, ba}
	}()
	go func() {
		req, _ := io.ReadAll(server) // ends only when the half-close arrives
		server.Write([]byte("answer to " + string(req)))
		server.Close()
	}()
	client.Write([]byte("ping"))
	client.CloseWrite()
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "answer to ping" {
		t.Fatalf("client read %q, %v", got, err)
	}
	select {
	case c := <-done:
		if c.ab != 4 || c.ba != int64(len("answer to ping")) {
			t.Errorf("Pipe counted %d and %d bytes, want 4 and %d", c.ab, c.ba, len("answer to ping"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return after both sides ended")
	}
}

// TestPipeIdle: a relay without a byte either way for idle ends.
func TestPipeIdle(t *testing.T) {
	_, a := tcpPair(t)
	b, _ := tcpPair(t)
	done := make(chan struct{})
	go func() { Pipe(a, b, 50*time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an idle relay did not end")
	}
}

// TestPipeKeepsDatagrams: over datagram conns each datagram crosses
// whole, the empty one and one larger than a stream's buffer included.
func TestPipeKeepsDatagrams(t *testing.T) {
	a, peerA := net.Pipe()
	b, peerB := net.Pipe()
	go PipeDatagrams(a, b, 0)
	defer peerA.Close()
	defer peerB.Close()
	for _, d := range []string{"one", "", strings.Repeat("x", 60000)} {
		go peerA.Write([]byte(d))
		buf := make([]byte, 65536)
		n, err := peerB.Read(buf)
		if err != nil || string(buf[:n]) != d {
			t.Fatalf("datagram of %d bytes arrived as %d, %v", len(d), n, err)
		}
	}
}

// panicConn panics on Read.
type panicConn struct{ net.Conn }

func (panicConn) Read([]byte) (int, error) { panic("boom") }

// TestPipePanicReachesCaller: a panic while copying b to a, in Pipe's own
// goroutine, closes both conns and is raised in the caller's goroutine,
// where a per-flow recover can see it, rather than killing the process.
func TestPipePanicReachesCaller(t *testing.T) {
	a, peerA := net.Pipe()
	b, _ := net.Pipe()
	defer peerA.Close()
	got := make(chan any, 1)
	go func() {
		defer func() { got <- recover() }()
		Pipe(a, panicConn{b}, 0)
	}()
	select {
	case p := <-got:
		if p == nil || !strings.Contains(p.(error).Error(), "boom") {
			t.Fatalf("caller recovered %v, want the copy's panic", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not return after its goroutine panicked")
	}
}

// BenchmarkPipe relays a loopback TCP stream.
func BenchmarkPipe(b *testing.B) {
	client, a := tcpPair(b)
	up, server := tcpPair(b)
	go Pipe(a, up, 0)
	go io.Copy(io.Discard, server)
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
