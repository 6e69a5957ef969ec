package crypto

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/encap"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// openBind opens a bind on local (port 0) and returns it with its receive
// function and port; the bind is closed when the test ends.
func openBind(tb testing.TB, b conn.Bind) (conn.ReceiveFunc, uint16) {
	tb.Helper()
	fns, port, err := b.Open(0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	if len(fns) == 0 {
		tb.Fatal("no receive function")
	}
	return fns[0], port
}

// wgBufs returns receive buffers shaped as wireguard-go passes them.
func wgBufs(n int) ([][]byte, []int, []conn.Endpoint) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, device.MaxMessageSize)
	}
	return bufs, make([]int, n), make([]conn.Endpoint, n)
}

// receiveN calls fn until want datagrams arrived or the deadline passed
// (the caller closes the bind to end a stuck receive).
func receiveN(t *testing.T, fn conn.ReceiveFunc, want int) (got [][]byte, from []conn.Endpoint) {
	t.Helper()
	bufs, sizes, eps := wgBufs(conn.IdealBatchSize)
	for len(got) < want {
		n, err := fn(bufs, sizes, eps)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), want, err)
		}
		for i := 0; i < n; i++ {
			got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
			from = append(from, eps[i])
		}
	}
	return got, from
}

// closeAfter closes b after d unless the returned stop is called first, so
// that a receive that waits for a datagram which never comes ends.
func closeAfter(b conn.Bind, d time.Duration) (stop func() bool) {
	return time.AfterFunc(d, func() { b.Close() }).Stop
}

// TestUDPBindRoundTrip: a batch of equal datagrams and a shorter last one
// (one GSO send) arrives whole and in order, each from the sender's
// address, and every datagram from one address shares one endpoint.
func TestUDPBindRoundTrip(t *testing.T) {
	a, b := newBind(loopback), newBind(loopback)
	_, aPort := openBind(t, a)
	recv, bPort := openBind(t, b)
	to := mustEndpoint(t, a, netip.AddrPortFrom(loopback, bPort))
	var sent [][]byte
	for i := 0; i < 40; i++ {
		sent = append(sent, bytes.Repeat([]byte{byte(i)}, 1200))
	}
	sent = append(sent, bytes.Repeat([]byte{0xee}, 300))
	if err := a.Send(sent, to); err != nil {
		t.Fatal(err)
	}
	defer closeAfter(b, 10*time.Second)()
	got, from := receiveN(t, recv, len(sent))
	want := netip.AddrPortFrom(loopback, aPort).String()
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("datagram %d: %d bytes starting %x, want %d starting %x", i, len(got[i]), got[i][:1], len(sent[i]), sent[i][:1])
		}
		if s := from[i].DstToString(); s != want {
			t.Fatalf("datagram %d from %s, want %s", i, s, want)
		}
		if from[i] != from[0] {
			t.Fatalf("datagram %d got a new endpoint for the same address", i)
		}
	}
	if from[0].SrcIP().IsValid() || from[0].SrcToString() != "" {
		t.Fatalf("endpoint has a source: %v", from[0].SrcToString())
	}
}

// TestUDPBindOnlyItsAddress: a bind on one of the host's addresses takes
// nothing sent to another address of the host on the same port (here
// 127.0.0.2, which loopback also answers), while the same sender reaches
// it at its own address.
func TestUDPBindOnlyItsAddress(t *testing.T) {
	b := newBind(loopback)
	recv, port := openBind(t, b)
	s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: int(port)}
	own := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)}
	if _, err := s.WriteToUDP([]byte("to another address"), other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteToUDP([]byte("to the bound address"), own); err != nil {
		t.Fatal(err)
	}
	defer closeAfter(b, 10*time.Second)()
	got, _ := receiveN(t, recv, 1)
	if string(got[0]) != "to the bound address" {
		t.Fatalf("first datagram taken: %q", got[0])
	}
}

// TestUDPBindClose: Close wakes a waiting receive with net.ErrClosed, Send
// then fails with net.ErrClosed, a second Open while open is refused, and
// the bind opens again after Close (wireguard-go's listen-port change).
func TestUDPBindClose(t *testing.T) {
	b := newBind(loopback)
	recv, port := openBind(t, b)
	if _, _, err := b.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Fatalf("second Open: %v, want ErrBindAlreadyOpen", err)
	}
	done := make(chan error, 1)
	go func() {
		bufs, sizes, eps := wgBufs(4)
		_, err := recv(bufs, sizes, eps)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("receive after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the receive")
	}
	ep := mustEndpoint(t, b, netip.AddrPortFrom(loopback, port))
	if err := b.Send([][]byte{[]byte("x")}, ep); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: %v, want net.ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	sendToSelf(t, b, "again")
}

func mustEndpoint(tb testing.TB, b conn.Bind, ap netip.AddrPort) conn.Endpoint {
	tb.Helper()
	ep, err := b.ParseEndpoint(ap.String())
	if err != nil {
		tb.Fatal(err)
	}
	return ep
}

// sendToSelf opens b, sends msg to its own port and fails unless msg is
// what its receive function returns.
func sendToSelf(t *testing.T, b conn.Bind, msg string) {
	t.Helper()
	recv, port := openBind(t, b)
	if err := b.Send([][]byte{[]byte(msg)}, mustEndpoint(t, b, netip.AddrPortFrom(loopback, port))); err != nil {
		t.Fatal(err)
	}
	defer closeAfter(b, 10*time.Second)()
	if got, _ := receiveN(t, recv, 1); string(got[0]) != msg {
		t.Fatalf("sent %q to the bind's own port, received %q", msg, got[0])
	}
}

// TestUDPBindParseEndpoint: IPv4 endpoints (also written IPv4-mapped) are
// taken; IPv6 and malformed ones are refused with an error naming them.
func TestUDPBindParseEndpoint(t *testing.T) {
	b := newBind(netip.Addr{})
	for in, want := range map[string]string{
		"198.18.0.2:51820":         "198.18.0.2:51820",
		"[::ffff:198.18.0.2]:4789": "198.18.0.2:4789",
	} {
		ep, err := b.ParseEndpoint(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if ep.DstToString() != want || ep.DstIP() != netip.MustParseAddrPort(want).Addr() {
			t.Fatalf("%s parsed as %s (%v), want %s", in, ep.DstToString(), ep.DstIP(), want)
		}
	}
	for _, in := range []string{"[2001:db8::1]:51820", "198.18.0.2", "198.18.0.2:99999", "host:51820", ""} {
		ep, err := b.ParseEndpoint(in)
		if err == nil {
			t.Fatalf("%q taken as %s", in, ep.DstToString())
		}
		if in != "" && !strings.Contains(err.Error(), in) {
			t.Fatalf("%q: error does not name it: %v", in, err)
		}
	}
	if _, err := b.ParseEndpoint("[2001:db8::1]:51820"); !errors.Is(err, encap.ErrNotIPv4) {
		t.Fatalf("IPv6 endpoint: %v, want ErrNotIPv4", err)
	}
}

// TestUDPBindMark: no mark (0) is taken, any other is refused, and the
// bind still opens and carries datagrams after a refusal.
func TestUDPBindMark(t *testing.T) {
	b := newBind(loopback)
	if err := b.SetMark(0); err != nil {
		t.Fatalf("SetMark(0): %v", err)
	}
	if err := b.SetMark(0x51820); !errors.Is(err, errNoMark) {
		t.Fatalf("SetMark(0x51820): %v, want errNoMark", err)
	}
	sendToSelf(t, b, "after a refused mark")
}

// TestUDPBindEndpointsBounded: senders from ever new ports cannot grow a
// receiver's endpoints past maxEndpoints.
func TestUDPBindEndpointsBounded(t *testing.T) {
	r := &udpReceiver{eps: make(map[netip.AddrPort]*udpEndpoint)}
	first := r.endpoint(netip.AddrPortFrom(loopback, 1))
	if r.endpoint(netip.AddrPortFrom(loopback, 1)) != first {
		t.Fatal("the same address got a new endpoint")
	}
	// Alternating senders: each gets its own endpoint back, not the
	// previous datagram's.
	second := r.endpoint(netip.AddrPortFrom(loopback, 2))
	if second == first || second.DstToString() != "127.0.0.1:2" {
		t.Fatalf("second sender got %s", second.DstToString())
	}
	if r.endpoint(netip.AddrPortFrom(loopback, 1)) != first || r.endpoint(netip.AddrPortFrom(loopback, 2)) != second {
		t.Fatal("alternating senders got new or swapped endpoints")
	}
	for p := 2; p < 3*maxEndpoints; p++ {
		r.endpoint(netip.AddrPortFrom(loopback, uint16(p)))
		if len(r.eps) > maxEndpoints {
			t.Fatalf("%d endpoints kept", len(r.eps))
		}
	}
}

// bindLoop sends batches of n datagrams of 1400 bytes from one bind to
// another over loopback, as wireguard-go sends and receives them.
type bindLoop struct {
	tx    conn.Bind
	to    conn.Endpoint
	recv  conn.ReceiveFunc
	batch [][]byte
	bufs  [][]byte
	sizes []int
	eps   []conn.Endpoint
}

func newBindLoop(tb testing.TB, n int) *bindLoop {
	tx, rx := newBind(loopback), newBind(loopback)
	openBind(tb, tx)
	recv, port := openBind(tb, rx)
	l := &bindLoop{tx: tx, to: mustEndpoint(tb, tx, netip.AddrPortFrom(loopback, port)), recv: recv}
	for range n {
		l.batch = append(l.batch, make([]byte, 1400))
	}
	l.bufs, l.sizes, l.eps = wgBufs(conn.IdealBatchSize)
	stop := closeAfter(rx, 60*time.Second)
	tb.Cleanup(func() { stop() })
	return l
}

// cycle sends one batch and receives all of it.
func (l *bindLoop) cycle(tb testing.TB) {
	if err := l.tx.Send(l.batch, l.to); err != nil {
		tb.Fatal(err)
	}
	for got := 0; got < len(l.batch); {
		n, err := l.recv(l.bufs, l.sizes, l.eps)
		if err != nil {
			tb.Fatalf("after %d of %d: %v", got, len(l.batch), err)
		}
		got += n
	}
}

// TestUDPBindAllocs: in steady state a batch sent and received through the
// bind allocates nothing (wireguard-go's StdNetBind allocates an endpoint
// per datagram).
func TestUDPBindAllocs(t *testing.T) {
	l := newBindLoop(t, 16)
	l.cycle(t)
	if n := testing.AllocsPerRun(100, func() { l.cycle(t) }); n != 0 {
		t.Fatalf("%.1f allocations per batch", n)
	}
}

// BenchmarkBind moves batches of 64 datagrams of 1400 bytes over loopback
// through udpBind; per datagram.
func BenchmarkBind(b *testing.B) {
	l := newBindLoop(b, 64)
	b.SetBytes(1400)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(l.batch) {
		l.cycle(b)
	}
}

// FuzzParseEndpoint: any text is refused or parses to an IPv4 endpoint
// that prints back to what parses to the same endpoint.
func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"198.18.0.2:51820", "[::ffff:198.18.0.2]:4789", "[2001:db8::1]:1", "1.2.3.4", ":", ""} {
		f.Add(s)
	}
	b := newBind(netip.Addr{})
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := b.ParseEndpoint(s)
		if err != nil {
			return
		}
		if !ep.DstIP().Is4() {
			t.Fatalf("%q parsed to %s", s, ep.DstToString())
		}
		again, err := b.ParseEndpoint(ep.DstToString())
		if err != nil || again.DstToString() != ep.DstToString() {
			t.Fatalf("%q → %s → %v, %v", s, ep.DstToString(), again, err)
		}
	})
}
