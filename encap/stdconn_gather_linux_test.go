package encap

import (
	"bytes"
	"testing"
)

var _ GatherWriter = (*StdConn)(nil)

// cut splits every datagram of want at head bytes (or at its end): the
// heads and tails WriteGather is given.
func cut(want [][]byte, head func(i int) int) (heads, tails [][]byte) {
	heads, tails = make([][]byte, len(want)), make([][]byte, len(want))
	for i, d := range want {
		h := min(head(i), len(d))
		heads[i], tails[i] = d[:h], d[h:]
	}
	return heads, tails
}

// TestWriteGather checks that every datagram arrives as its head followed
// by its tail, with GSO and without, for heads and tails of any length
// (empty ones included) and runs that change size.
func TestWriteGather(t *testing.T) {
	sizes := append(append(append(repeat(40, 1400), 333), repeat(5, 1000)...), 0, 70, 70)
	for _, gso := range []bool{true, false} {
		for name, head := range map[string]func(int) int{
			"vxlan+tcp headers": func(int) int { return 8 + 14 + 20 + 32 },
			"no tail":           func(int) int { return 1 << 20 },
			"no head":           func(int) int { return 0 },
			"varied":            func(i int) int { return i * 37 % 200 },
		} {
			a, b := listenPair(t, 64)
			a.gsoOff.Store(!gso)
			want := payloads(sizes...)
			heads, tails := cut(want, head)
			if err := a.WriteGather(heads, tails, b.LocalAddr()); err != nil {
				t.Fatalf("gso=%v %s: %v", gso, name, err)
			}
			got := newReadScratch(64).collect(t, b, len(want))
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("gso=%v %s: datagram %d: %d bytes, want %d", gso, name, i, len(got[i]), len(want[i]))
				}
			}
		}
	}
}

func TestWriteGatherArgs(t *testing.T) {
	a, b := listenPair(t, 8)
	d := payloads(100, 100)
	if err := a.WriteGather(d, d[:1], b.LocalAddr()); err != ErrBatchArgs {
		t.Fatalf("fewer tails than heads: %v, want ErrBatchArgs", err)
	}
}

func TestWriteGatherAllocs(t *testing.T) {
	a, b := listenPair(t, 64)
	want := payloads(append(repeat(30, 1400), 100, 200, 200, 60)...)
	heads, tails := cut(want, func(int) int { return 74 })
	r := newReadScratch(64)
	run := func() {
		if err := a.WriteGather(heads, tails, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(want); {
			n, err := b.Read(r.bufs, r.sizes, r.eps)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	run()
	if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
		t.Fatalf("WriteGather+Read allocate %v times per batch, want 0", allocs)
	}
}

// BenchmarkStdConnWriteGather is BenchmarkStdConnReadViews with each
// datagram sent as 74 bytes of headers and 1326 of payload from separate
// slices, as the port path sends a TAP super-frame's segments.
func BenchmarkStdConnWriteGather(b *testing.B) {
	tx, rx := listenPair(b, 64)
	want := payloads(repeat(64, 1400)...)
	heads, tails := cut(want, func(int) int { return 74 })
	r := newReadScratch(64)
	views := make([][]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(want) * 1400))
	for b.Loop() {
		if err := tx.WriteGather(heads, tails, rx.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(want); {
			n, err := rx.ReadViews(r.bufs, views, r.eps)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}
