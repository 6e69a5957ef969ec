package encap_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/encap/encaptest"
)

var loopback = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)

// newTestPair returns two connected conns: two StdConns on 127.0.0.1 if
// realSocket, else two ChannelConns on one fake network. Both are closed
// when the test ends.
func newTestPair(tb testing.TB, realSocket bool) (a, b encap.Conn) {
	tb.Helper()
	if realSocket {
		ca, err := encap.Listen(loopback, 64)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ca.Close() })
		cb, err := encap.Listen(loopback, 64)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { cb.Close() })
		return ca, cb
	}
	n := encaptest.NewNetwork()
	ca, cb := n.Conn(loopback), n.Conn(loopback)
	tb.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// forBoth runs test on the fake pair and on the loopback pair.
func forBoth(t *testing.T, test func(t *testing.T, a, b encap.Conn)) {
	for _, real := range []bool{false, true} {
		name := "fake"
		if real {
			name = "loopback"
		}
		t.Run(name, func(t *testing.T) {
			a, b := newTestPair(t, real)
			test(t, a, b)
		})
	}
}

// readBufs allocates a batch of read buffers for c.
func readBufs(c encap.Conn) ([][]byte, []int, []netip.AddrPort) {
	bufs := make([][]byte, c.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, encap.MaxDatagram)
	}
	return bufs, make([]int, len(bufs)), make([]netip.AddrPort, len(bufs))
}

// readN reads exactly n datagrams from c, checks that they all came from
// src, and returns copies. A watchdog closes c if they do not arrive in
// time, so a lost datagram fails the test instead of hanging it.
func readN(tb testing.TB, c encap.Conn, n int, src netip.AddrPort) [][]byte {
	tb.Helper()
	watchdog := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer watchdog.Stop()
	bufs, sizes, eps := readBufs(c)
	var got [][]byte
	for len(got) < n {
		k, err := c.Read(bufs, sizes, eps)
		if err != nil {
			tb.Fatalf("Read after %d of %d datagrams: %v", len(got), n, err)
		}
		for i := 0; i < k; i++ {
			if eps[i] != src {
				tb.Fatalf("datagram %d from %v, want %v", len(got), eps[i], src)
			}
			got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
	}
	if len(got) != n {
		tb.Fatalf("read %d datagrams, want %d", len(got), n)
	}
	return got
}

// datagram returns a size-byte datagram that encodes seq.
func datagram(seq, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(seq*7 + i)
	}
	if size >= 4 {
		binary.BigEndian.PutUint32(b, uint32(seq))
	}
	return b
}

func checkSame(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d: got %d bytes %x…, want %d bytes %x…",
				i, len(got[i]), head(got[i]), len(want[i]), head(want[i]))
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func TestConnBatchRoundTrip(t *testing.T) {
	forBoth(t, func(t *testing.T, a, b encap.Conn) {
		var want [][]byte
		for i := 0; i < 16; i++ {
			want = append(want, datagram(i, 100+i))
		}
		if err := a.Write(want, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		checkSame(t, readN(t, b, len(want), a.LocalAddr()), want)
		// and back
		if err := b.Write(want[:3], a.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		checkSame(t, readN(t, a, 3, b.LocalAddr()), want[:3])
	})
}

func TestConnTable(t *testing.T) {
	sizes := func(ns ...int) [][]byte {
		var out [][]byte
		for i, n := range ns {
			out = append(out, datagram(i, n))
		}
		return out
	}
	equal := func(count, size int) []int {
		s := make([]int, count)
		for i := range s {
			s[i] = size
		}
		return s
	}
	tests := []struct {
		name string
		bufs [][]byte
	}{
		{"single", sizes(1400)},
		{"empty datagram", sizes(0, 10, 0)},
		{"gso run and a short tail", sizes(append(equal(40, 1400), 333)...)},
		{"mixed sizes", sizes(1400, 1400, 60, 1400, 9000, 9000, 1, 1, 1, 1500, 1400)},
		{"longer tail ends run", sizes(1000, 1000, 1200, 1200, 1200)},
		{"more than one gso message", sizes(equal(64+20, 1000)...)},
		{"more than a batch", sizes(equal(150, 200)...)},
		{"jumbo", sizes(60000, 60000, 65507)},
		{"byte limit splits run", sizes(equal(50, 1472)...)},
	}
	forBoth(t, func(t *testing.T, a, b encap.Conn) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := a.Write(tt.bufs, b.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				checkSame(t, readN(t, b, len(tt.bufs), a.LocalAddr()), tt.bufs)
			})
		}
	})
}

// TestConnWriteLeavesBuffers checks that Write does not modify the caller's
// buffers, so one batch can be replicated to several peers.
func TestConnWriteLeavesBuffers(t *testing.T) {
	forBoth(t, func(t *testing.T, a, b encap.Conn) {
		var bufs, orig [][]byte
		for i := 0; i < 10; i++ {
			bufs = append(bufs, datagram(i, 500))
			orig = append(orig, datagram(i, 500))
		}
		for round := 0; round < 3; round++ {
			if err := a.Write(bufs, b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
		checkSame(t, bufs, orig)
		got := readN(t, b, 30, a.LocalAddr())
		checkSame(t, got[20:], orig)
	})
}

func TestConnConcurrentWriters(t *testing.T) {
	const (
		writers = 4
		batches = 25
		perB    = 8
	)
	forBoth(t, func(t *testing.T, a, b encap.Conn) {
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < batches; i++ {
					bufs := make([][]byte, perB)
					for j := range bufs {
						bufs[j] = make([]byte, 64+w) // writers use different sizes
						binary.BigEndian.PutUint32(bufs[j], uint32(w<<24|i*perB+j))
					}
					if err := a.Write(bufs, b.LocalAddr()); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		got := readN(t, b, writers*batches*perB, a.LocalAddr())
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		next := make([]int, writers)
		for _, d := range got {
			v := binary.BigEndian.Uint32(d)
			w, seq := int(v>>24), int(v&0xffffff)
			if len(d) != 64+w || seq != next[w] {
				t.Fatalf("writer %d: got seq %d (%d bytes), want %d", w, seq, len(d), next[w])
			}
			next[w]++
		}
	})
}

func TestConnReadArgs(t *testing.T) {
	forBoth(t, func(t *testing.T, a, b encap.Conn) {
		bufs, sizes, eps := readBufs(b)
		if _, err := b.Read(bufs, sizes[:1], eps); !errors.Is(err, encap.ErrBatchArgs) {
			t.Errorf("short sizes: err = %v", err)
		}
		if _, err := b.Read(bufs, sizes, eps[:1]); !errors.Is(err, encap.ErrBatchArgs) {
			t.Errorf("short eps: err = %v", err)
		}
		small := [][]byte{make([]byte, 1500)}
		if _, err := b.Read(small, sizes, eps); !errors.Is(err, encap.ErrShortBuffer) {
			t.Errorf("short buffer: err = %v", err)
		}
		v6 := netip.MustParseAddrPort("[::1]:4789")
		if err := a.Write([][]byte{{1}}, v6); !errors.Is(err, encap.ErrNotIPv4) {
			t.Errorf("ipv6 destination: err = %v", err)
		}
	})
}

// TestConnClose checks that Close wakes a blocked Read with net.ErrClosed,
// that Close is idempotent, that I/O after it fails, and that nothing is
// left running.
func TestConnClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, real := range []bool{false, true} {
		a, b := newTestPair(t, real)
		done := make(chan error, 1)
		go func() {
			bufs, sizes, eps := readBufs(b)
			_, err := b.Read(bufs, sizes, eps)
			done <- err
		}()
		// Give the reader time to block; the outcome must be the same
		// whether it has or not.
		time.Sleep(20 * time.Millisecond)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("real=%v: Read after Close: %v, want net.ErrClosed", real, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("real=%v: Close did not unblock Read", real)
		}
		if err := b.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		bufs, sizes, eps := readBufs(b)
		if _, err := b.Read(bufs, sizes, eps); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("real=%v: Read on closed conn: %v", real, err)
		}
		if err := b.Write([][]byte{{1}}, a.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("real=%v: Write on closed conn: %v", real, err)
		}
		a.Close()
	}
}
