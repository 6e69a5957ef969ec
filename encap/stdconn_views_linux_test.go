package encap

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

var _ ViewReader = (*StdConn)(nil)

// collectViews is collect through ReadViews with nviews views over nbufs
// buffers. It also checks that every view is capped at its length, so that
// the switch, which may rewrite a frame in place, cannot reach the next
// datagram of the same GRO message.
func collectViews(tb testing.TB, c *StdConn, nbufs, nviews, n int) [][]byte {
	tb.Helper()
	r := newReadScratch(nbufs)
	views := make([][]byte, nviews)
	eps := r.eps
	if nviews > len(eps) {
		eps = make([]netip.AddrPort, nviews)
	}
	watchdog := time.AfterFunc(10*time.Second, func() { c.Close() })
	defer watchdog.Stop()
	var got [][]byte
	for len(got) < n {
		k, err := c.ReadViews(r.bufs, views, eps)
		if err != nil {
			tb.Fatalf("ReadViews after %d of %d: %v", len(got), n, err)
		}
		for i := 0; i < k; i++ {
			if cap(views[i]) != len(views[i]) {
				tb.Fatalf("view %d: cap %d > len %d", i, cap(views[i]), len(views[i]))
			}
			got = append(got, append([]byte(nil), views[i]...))
		}
	}
	return got
}

// TestReadViewsGRO checks that the datagrams of one GRO message are lent
// in place: back to back in the buffer the kernel filled, not copied into
// buffers of their own.
func TestReadViewsGRO(t *testing.T) {
	kgro, kgso := kernelOffloads(t)
	if !kgro || !kgso {
		t.Skipf("kernel without UDP GRO/GSO (gro=%v gso=%v)", kgro, kgso)
	}
	a, b := listenPair(t, 64)
	want := payloads(append(repeat(40, 1400), 333)...)
	if err := a.Write(want, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	r := newReadScratch(64)
	views := make([][]byte, 64)
	n, err := b.ReadViews(r.bufs, views, r.eps)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("ReadViews = %d datagrams, want %d", n, len(want))
	}
	base := unsafe.Pointer(unsafe.SliceData(r.bufs[0]))
	for i := range want {
		if !bytes.Equal(views[i], want[i]) || r.eps[i] != a.LocalAddr() {
			t.Fatalf("datagram %d differs (%d bytes from %v)", i, len(views[i]), r.eps[i])
		}
		if p := unsafe.Pointer(unsafe.SliceData(views[i])); p != unsafe.Add(base, i*1400) {
			t.Fatalf("datagram %d is not at offset %d of the first buffer: copied", i, i*1400)
		}
	}
}

// TestReadViewsStash checks the overflow path of ReadViews, and that
// ReadViews and Read may be mixed: messages holding more datagrams than
// the caller's views are lent over several calls, in order.
func TestReadViewsStash(t *testing.T) {
	for _, nviews := range []int{1, 7, 16, 64} {
		for _, mixed := range []bool{false, true} {
			a, b := listenPair(t, 64)
			var want [][]byte
			for round := 0; round < 3; round++ {
				batch := payloads(append(append(repeat(30, 1000), 10, 0, 20), repeat(50, 300)...)...)
				for i := range batch {
					if len(batch[i]) > 0 {
						batch[i][0] = byte(round)
					}
				}
				if err := a.Write(batch, b.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				want = append(want, batch...)
			}
			var got [][]byte
			if mixed {
				got = newReadScratch(nviews).collect(t, b, 1)
			}
			got = append(got, collectViews(t, b, nviews, nviews, len(want)-len(got))...)
			mustEqual(t, got, want)
			if b.rx.stash.pending() {
				t.Fatalf("%d views: stash not empty after all datagrams were read", nviews)
			}
		}
	}
}

func TestReadViewsArgs(t *testing.T) {
	_, b := listenPair(t, 8)
	r := newReadScratch(8)
	if _, err := b.ReadViews(r.bufs, make([][]byte, 9), r.eps); err != ErrBatchArgs {
		t.Fatalf("eps shorter than views: %v, want ErrBatchArgs", err)
	}
	short := [][]byte{make([]byte, 1500)}
	if _, err := b.ReadViews(short, make([][]byte, 1), r.eps); err != ErrShortBuffer {
		t.Fatalf("short buffer: %v, want ErrShortBuffer", err)
	}
	b.Close()
	if _, err := b.ReadViews(r.bufs, make([][]byte, 8), r.eps); err == nil {
		t.Fatal("ReadViews on a closed conn succeeded")
	}
}

func TestReadViewsAllocs(t *testing.T) {
	a, b := listenPair(t, 64)
	bufs := payloads(append(repeat(30, 1400), 100, 200, 200, 60)...)
	r := newReadScratch(64)
	views := make([][]byte, 64)
	run := func() {
		if err := a.Write(bufs, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(bufs); {
			n, err := b.ReadViews(r.bufs, views, r.eps)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	run()
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Fatalf("Write+ReadViews allocate %v times per batch, want 0", allocs)
	}
}

// BenchmarkStdConnReadViews is BenchmarkStdConnThroughput/gso+gro with
// ReadViews instead of Read: the difference is the copy that splitting a
// GRO message into separate buffers costs.
func BenchmarkStdConnReadViews(b *testing.B) {
	tx, rx := listenPair(b, 64)
	bufs := payloads(repeat(64, 1400)...)
	r := newReadScratch(64)
	views := make([][]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(bufs) * 1400))
	for b.Loop() {
		if err := tx.Write(bufs, rx.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(bufs); {
			n, err := rx.ReadViews(r.bufs, views, r.eps)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
