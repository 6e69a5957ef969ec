package relay

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// udpSocket opens a loopback UDP socket closed with the test.
func udpSocket(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs ServeDatagrams on a new socket with o, dialling to, and
// returns the socket and the number of dials so far.
func serve(t *testing.T, o Datagrams, to net.Addr) (*net.UDPConn, *atomic.Int32) {
	t.Helper()
	pc := udpSocket(t)
	var dials atomic.Int32
	o.Dial = func() (net.Conn, error) {
		dials.Add(1)
		return net.Dial("udp4", to.String())
	}
	done := make(chan struct{})
	go func() { ServeDatagrams(pc, o); close(done) }()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc, &dials
}

// TestServeDatagramsEcho: each source gets its answers, one flow each,
// and the counters add up.
func TestServeDatagramsEcho(t *testing.T) {
	echo := udpSocket(t)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	}()
	var cnt Counters
	pc, dials := serve(t, Datagrams{Idle: time.Minute, MaxFlows: 8, Counters: &cnt}, echo.LocalAddr())
	for i := range 2 {
		src := udpSocket(t)
		for _, msg := range []string{"a", "bb"} {
			src.WriteTo([]byte(msg), pc.LocalAddr())
			src.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, err := src.Read(buf)
			if err != nil || string(buf[:n]) != "re:"+msg {
				t.Fatalf("source %d got %q, %v; want %q", i, buf[:n], err, "re:"+msg)
			}
		}
	}
	// The relay counts a datagram after its write returns, which may be
	// after the source has read it: wait for the counts to settle.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cnt.BytesIn.Load() == 6 && cnt.BytesOut.Load() == 18 {
			break
		}
	}
	if d, a, in, out := dials.Load(), cnt.Accepted.Load(), cnt.BytesIn.Load(), cnt.BytesOut.Load(); d != 2 || a != 2 || in != 6 || out != 18 {
		t.Errorf("dials %d, accepted %d, bytes in %d, out %d; want 2, 2, 6, 18", d, a, in, out)
	}
	if n := cnt.Active.Load(); n != 2 {
		t.Errorf("active flows = %d, want 2", n)
	}
}

// TestServeDatagramsOneWay: a source that only sends (logs, metrics)
// keeps its flow: idleness counts datagrams either way, not only answers.
func TestServeDatagramsOneWay(t *testing.T) {
	sink := udpSocket(t) // reads nothing, answers nothing
	idle := 500 * time.Millisecond
	pc, dials := serve(t, Datagrams{Idle: idle, MaxFlows: 8}, sink.LocalAddr())
	src := udpSocket(t)
	for end := time.Now().Add(4 * idle); time.Now().Before(end); time.Sleep(idle / 10) {
		src.WriteTo([]byte("log line"), pc.LocalAddr())
	}
	if d := dials.Load(); d != 1 {
		t.Errorf("a steady one-way source was dialled %d times, want 1", d)
	}
}

// TestServeDatagramsBound: a source beyond MaxFlows is dropped and
// counted, and the flows end after Idle.
func TestServeDatagramsBound(t *testing.T) {
	sink := udpSocket(t)
	var cnt Counters
	idle := 100 * time.Millisecond
	pc, dials := serve(t, Datagrams{Idle: idle, MaxFlows: 1, Counters: &cnt}, sink.LocalAddr())
	a, b := udpSocket(t), udpSocket(t)
	a.WriteTo([]byte("x"), pc.LocalAddr())
	deadline := time.Now().Add(5 * time.Second)
	for cnt.Accepted.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.WriteTo([]byte("y"), pc.LocalAddr())
	for cnt.Refused.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d, r := dials.Load(), cnt.Refused.Load(); d != 1 || r != 1 {
		t.Fatalf("dials %d, refused %d; want 1 and 1", d, r)
	}
	for cnt.Active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := cnt.Active.Load(); n != 0 {
		t.Fatalf("%d flows still open after their idle time", n)
	}
	b.WriteTo([]byte("y"), pc.LocalAddr())
	for dials.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if d := dials.Load(); d != 2 {
		t.Errorf("a source after the idle flow went was not served: %d dials", d)
	}
}
