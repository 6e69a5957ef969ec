package encap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

var loopback4 = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)

func listenPair(tb testing.TB, batch int) (a, b *StdConn) {
	tb.Helper()
	var err error
	if a, err = Listen(loopback4, batch); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	if b, err = Listen(loopback4, batch); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	return a, b
}

type readScratch struct {
	bufs  [][]byte
	sizes []int
	eps   []netip.AddrPort
}

func newReadScratch(n int) *readScratch {
	r := &readScratch{bufs: make([][]byte, n), sizes: make([]int, n), eps: make([]netip.AddrPort, n)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, MaxDatagram)
	}
	return r
}

// collect reads until n datagrams arrived and returns copies of them; a
// watchdog closes c if they do not.
func (r *readScratch) collect(tb testing.TB, c *StdConn, n int) [][]byte {
	tb.Helper()
	watchdog := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer watchdog.Stop()
	var got [][]byte
	for len(got) < n {
		k, err := c.Read(r.bufs, r.sizes, r.eps)
		if err != nil {
			tb.Fatalf("Read after %d of %d: %v", len(got), n, err)
		}
		for i := 0; i < k; i++ {
			got = append(got, append([]byte(nil), r.bufs[i][:r.sizes[i]]...))
		}
	}
	return got
}

func payloads(sizes ...int) [][]byte {
	out := make([][]byte, len(sizes))
	for i, n := range sizes {
		out[i] = make([]byte, n)
		for j := range out[i] {
			out[i][j] = byte(i*31 + j)
		}
	}
	return out
}

func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

func mustEqual(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d differs: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}

func TestListenArgs(t *testing.T) {
	tests := []struct {
		name  string
		laddr netip.AddrPort
		batch int
		ok    bool
	}{
		{"loopback default batch", loopback4, 0, true},
		{"mapped ipv4", netip.MustParseAddrPort("[::ffff:127.0.0.1]:0"), 8, true},
		{"max batch", loopback4, MaxBatchSize, true},
		{"ipv6", netip.MustParseAddrPort("[::1]:0"), 8, false},
		{"zero addr", netip.AddrPort{}, 8, false},
		{"negative batch", loopback4, -1, false},
		{"batch too large", loopback4, MaxBatchSize + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Listen(tt.laddr, tt.batch)
			if (err == nil) != tt.ok {
				t.Fatalf("Listen(%v, %d) error = %v, want ok=%v", tt.laddr, tt.batch, err, tt.ok)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if !c.LocalAddr().Addr().Is4() || c.LocalAddr().Port() == 0 {
				t.Fatalf("LocalAddr = %v", c.LocalAddr())
			}
			if want := max(tt.batch, DefaultBatchSize*boolInt(tt.batch == 0)); c.BatchSize() != want {
				t.Fatalf("BatchSize = %d, want %d", c.BatchSize(), want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestGROCoalesced checks that a GSO run sent on loopback arrives as one
// coalesced message (so the GRO split path really is exercised) and is split
// back into the original datagrams, in order.
func TestGROCoalesced(t *testing.T) {
	kgro, kgso := kernelOffloads(t)
	if !kgro || !kgso {
		t.Skipf("kernel without UDP GRO/GSO (gro=%v gso=%v)", kgro, kgso)
	}
	a, b := listenPair(t, 64)
	gro, gso := b.Offload()
	if _, agso := a.Offload(); !gro || !agso || !gso {
		t.Fatalf("the kernel offers UDP GRO and GSO but Listen did not enable them (gro=%v gso=%v)", gro, agso)
	}
	want := payloads(append(repeat(40, 1400), 333)...)
	if err := a.Write(want, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	r := newReadScratch(64)
	n, err := b.Read(r.bufs, r.sizes, r.eps)
	if err != nil {
		t.Fatal(err)
	}
	if b.rx.n != 1 || b.rx.segs[0] != 41 || b.rx.seg[0] != 1400 {
		t.Fatalf("received %d messages, first with %d segments of %d bytes; want 1 with 41 of 1400",
			b.rx.n, b.rx.segs[0], b.rx.seg[0])
	}
	if n != len(want) {
		t.Fatalf("Read = %d datagrams, want %d", n, len(want))
	}
	for i := range want {
		if !bytes.Equal(r.bufs[i][:r.sizes[i]], want[i]) || r.eps[i] != a.LocalAddr() {
			t.Fatalf("datagram %d differs (%d bytes from %v)", i, r.sizes[i], r.eps[i])
		}
	}
}

// TestGROStash checks the overflow path: coalesced messages holding more
// datagrams than the caller's batch are handed out over several Reads,
// in order, even when the caller passes fewer buffers than one message has
// segments.
func TestGROStash(t *testing.T) {
	for _, nbufs := range []int{1, 7, 16, 64} {
		a, b := listenPair(t, 64)
		var want [][]byte
		for round := 0; round < 3; round++ {
			batch := payloads(append(append(repeat(30, 1000), 10, 20), repeat(50, 300)...)...)
			for i := range batch {
				batch[i][0] = byte(round)
			}
			if err := a.Write(batch, b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			want = append(want, batch...)
		}
		r := newReadScratch(nbufs)
		mustEqual(t, r.collect(t, b, len(want)), want)
		if b.rx.stash.pending() {
			t.Fatalf("%d bufs: stash not empty after all datagrams were read", nbufs)
		}
	}
}

// TestGSOFallback makes the kernel refuse GSO (UDP_SEGMENT is rejected with
// EINVAL on a socket with SO_NO_CHECK) and checks that every datagram still
// arrives, that large segments only lower the GSO limit, and that small ones
// turn GSO off.
func TestGSOFallback(t *testing.T) {
	if _, kgso := kernelOffloads(t); !kgso {
		t.Skip("kernel without UDP GSO")
	}
	a, b := listenPair(t, 64)
	if _, gso := a.Offload(); !gso {
		t.Fatal("the kernel offers UDP GSO but Listen did not enable it")
	}
	var serr error
	if err := a.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1)
	}); err != nil || serr != nil {
		t.Skipf("cannot set SO_NO_CHECK: %v %v", err, serr)
	}
	r := newReadScratch(64)
	want := payloads(append(repeat(40, 1400), 333)...)
	if err := a.Write(want, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, r.collect(t, b, len(want)), want)
	if got := a.gsoMaxSeg.Load(); got != 1399 {
		t.Fatalf("gsoMaxSeg = %d, want 1399", got)
	}
	if _, gso := a.Offload(); !gso {
		t.Fatal("GSO turned off by a large segment")
	}
	want = payloads(repeat(20, 100)...)
	if err := a.Write(want, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, r.collect(t, b, len(want)), want)
	if _, gso := a.Offload(); gso {
		t.Fatal("GSO still on after a small segment was refused")
	}
}

// TestNoGRO checks the receive path of a socket without UDP GRO: the kernel
// splits GSO sends before they reach it.
func TestNoGRO(t *testing.T) {
	a, b := listenPair(t, 64)
	var serr error
	if err := b.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 0)
	}); err != nil || serr != nil {
		t.Skipf("cannot turn GRO off: %v %v", err, serr)
	}
	want := payloads(append(repeat(40, 1400), 333)...)
	if err := a.Write(want, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, newReadScratch(64).collect(t, b, len(want)), want)
}

func TestWriteTooLarge(t *testing.T) {
	a, b := listenPair(t, 64)
	bufs := payloads(100, maxUDPPayload4+1, 200)
	err := a.Write(bufs, b.LocalAddr())
	if !errors.Is(err, unix.EMSGSIZE) {
		t.Fatalf("Write error = %v, want EMSGSIZE", err)
	}
	mustEqual(t, newReadScratch(64).collect(t, b, 2), [][]byte{bufs[0], bufs[2]})
}

func TestRunLen(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		limit int
		want  int
	}{
		{"single", []int{100}, 64, 1},
		{"equal", []int{100, 100, 100}, 64, 3},
		{"short tail", []int{100, 100, 50, 100}, 64, 3},
		{"longer breaks", []int{100, 200}, 64, 1},
		{"zero breaks", []int{100, 0}, 64, 1},
		{"limit", repeat(10, 100), 4, 4},
		{"byte limit", repeat(50, 1472), 64, maxUDPPayload4 / 1472},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runLen(payloads(tt.sizes...), nil, tt.limit); got != tt.want {
				t.Fatalf("runLen = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestGROSizeParse(t *testing.T) {
	hdr := unix.CmsgLen(0)
	mk := func(level, typ int32, data []byte) []byte {
		b := make([]byte, cmsgAlign(unix.CmsgSpace(len(data))))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(len(data)))
		copy(b[hdr:], data)
		return b
	}
	gro := mk(unix.IPPROTO_UDP, unix.UDP_GRO, []byte{0xdc, 0x05, 0, 0}) // 1500, little endian
	if isBigEndian() {
		gro = mk(unix.IPPROTO_UDP, unix.UDP_GRO, []byte{0, 0, 0x05, 0xdc})
	}
	other := mk(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16))
	tests := []struct {
		name string
		oob  []byte
		want int
	}{
		{"none", nil, 0},
		{"gro", gro, 1500},
		{"after another cmsg", append(append([]byte(nil), other...), gro...), 1500},
		{"truncated", gro[:hdr+2], 0},
		{"bad length", func() []byte { b := append([]byte(nil), gro...); b[0] = 200; return b }(), 0},
		{"zero length", func() []byte { b := append([]byte(nil), gro...); clear(b[:8]); return b }(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := groSize(tt.oob); got != tt.want {
				t.Fatalf("groSize = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestStdConnAllocs checks that a steady-state Write + Read of a batch
// allocates nothing, with and without GSO.
func TestStdConnAllocs(t *testing.T) {
	for _, gso := range []bool{true, false} {
		a, b := listenPair(t, 64)
		a.gsoOff.Store(!gso)
		bufs := payloads(append(repeat(30, 1400), 100, 200, 200, 60)...)
		r := newReadScratch(64)
		run := func() {
			if err := a.Write(bufs, b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			for got := 0; got < len(bufs); {
				n, err := b.Read(r.bufs, r.sizes, r.eps)
				if err != nil {
					t.Fatal(err)
				}
				got += n
			}
		}
		run() // warm up the scratch free list
		if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
			t.Fatalf("gso=%v: Write+Read allocate %v times per batch, want 0", gso, allocs)
		}
	}
}

// TestReadClosedWhileParked checks the netpoller path directly: a Read
// blocked in the poller returns net.ErrClosed when the conn closes.
func TestReadClosedWhileParked(t *testing.T) {
	_, b := listenPair(t, 8)
	r := newReadScratch(8)
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(r.bufs, r.sizes, r.eps)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if err != net.ErrClosed {
			t.Fatalf("Read = %v, want net.ErrClosed itself", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

// BenchmarkStdConnThroughput measures a loopback pair moving batches of 64
// datagrams of 1400 bytes (a VXLAN datagram on a 1500 MTU underlay is at
// most 1472): one Write, then Reads until the batch is in.
func BenchmarkStdConnThroughput(b *testing.B) {
	for _, bc := range []struct {
		name     string
		gso, gro bool
	}{{"gso+gro", true, true}, {"gso", true, false}, {"plain", false, false}} {
		b.Run(bc.name, func(b *testing.B) {
			tx, rx := listenPair(b, 64)
			tx.gsoOff.Store(!bc.gso)
			if !bc.gro {
				_ = rx.rc.Control(func(fd uintptr) {
					_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 0)
				})
			}
			bufs := payloads(repeat(64, 1400)...)
			r := newReadScratch(64)
			b.ReportAllocs()
			b.SetBytes(int64(len(bufs) * 1400))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := tx.Write(bufs, rx.LocalAddr()); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < len(bufs); {
					n, err := rx.Read(r.bufs, r.sizes, r.eps)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}

func isBigEndian() bool {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	return b[0] == 0
}

// kernelOffloads asks the kernel directly, on a socket of the test's own,
// whether it offers UDP GRO and GSO, so that tests skip for a kernel that
// lacks them but fail when StdConn does not use what the kernel offers.
func kernelOffloads(t *testing.T) (gro, gso bool) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	gro = unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	_, err = unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return gro, err == nil
}

func TestPathMTULoopback(t *testing.T) {
	mtu, err := PathMTU(netip.MustParseAddrPort("127.0.0.1:4789"))
	if err != nil {
		t.Fatal(err)
	}
	if mtu < 1280 {
		t.Fatalf("loopback path mtu %d", mtu)
	}
	if _, err := PathMTU(netip.MustParseAddrPort("[::1]:4789")); err == nil {
		t.Fatal("ipv6 accepted")
	}
}
