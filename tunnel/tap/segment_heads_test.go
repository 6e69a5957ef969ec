package tap

import (
	"bytes"
	"testing"
	"unsafe"
)

// splitHeads is split through emitHeads: each frame is its headers
// followed by its tail. lent counts the frames whose payload was a view of
// sf rather than a copy.
func splitHeads(tb testing.TB, sf []byte, batch, bufLen int) (frames [][]byte, ok, dropped bool, lent int) {
	var s splitter
	if !s.load(sf) {
		return nil, false, false, 0
	}
	bufs, sizes := testBufs(batch, bufLen)
	tails := make([][]byte, batch)
	lo, hi := uintptr(unsafe.Pointer(unsafe.SliceData(sf))), uintptr(unsafe.Pointer(unsafe.SliceData(sf)))+uintptr(len(sf))
	for i := 0; s.active(); i++ {
		if i > 70000 {
			tb.Fatal("splitter does not terminate")
		}
		n, d := s.emitHeads(bufs, sizes, tails, testOffset)
		dropped = dropped || d
		for k := range n {
			f := append([]byte(nil), bufs[k][testOffset:testOffset+sizes[k]]...)
			if t := tails[k]; len(t) > 0 {
				p := uintptr(unsafe.Pointer(unsafe.SliceData(t)))
				if p < lo || p+uintptr(len(t)) > hi || cap(t) != len(t) {
					tb.Fatalf("tail %d is not a capped view of the superframe", k)
				}
				lent++
			}
			frames = append(frames, append(f, tails[k]...))
		}
	}
	return frames, true, dropped, lent
}

// sameSplit checks that emitHeads yields exactly emit's frames for sf.
func sameSplit(t *testing.T, sf []byte, batch, bufLen int) (frames, lent int) {
	t.Helper()
	want, ok1, d1 := split(t, append([]byte(nil), sf...), batch, bufLen)
	got, ok2, d2, lent := splitHeads(t, append([]byte(nil), sf...), batch, bufLen)
	if ok1 != ok2 || d1 != d2 || len(got) != len(want) {
		t.Fatalf("emitHeads: ok %v dropped %v %d frames; emit: ok %v dropped %v %d frames", ok2, d2, len(got), ok1, d1, len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs from emit's", i)
		}
	}
	return len(got), lent
}

func TestSegmentHeads(t *testing.T) {
	noGSO := buildSuper(tcpSpec{payload: pattern(300, 4), flags: tcpFlagACK}, 1448)
	noGSO[1] = vnetGSONone
	for _, tc := range []struct {
		name string
		sf   []byte
		lent bool
	}{
		{"v4", buildSuper(tcpSpec{payload: pattern(65000, 1), seq: 0xfffff000, id: 0xfff0, flags: tcpFlagACK | tcpFlagPSH | tcpFlagFIN | tcpFlagCWR, opts: testTSOpts}, 1448), true},
		{"v6", buildSuper(tcpSpec{v6: true, payload: pattern(30001, 2), flags: tcpFlagACK}, 1428), true},
		{"odd mss", buildSuper(tcpSpec{payload: pattern(5001, 3), flags: tcpFlagACK}, 1001), true},
		{"no gso", noGSO, false},
	} {
		for _, batch := range []int{64, 7, 1} {
			n, lent := sameSplit(t, tc.sf, batch, testOffset+ethHdrLen+1500)
			if want := map[bool]int{true: n, false: 0}[tc.lent]; lent != want {
				t.Fatalf("%s batch %d: %d of %d payloads lent, want %d", tc.name, batch, lent, n, want)
			}
		}
	}
	// Segments larger than the buffers (an MSS above the MTU) are dropped
	// as emit drops them, though their headers alone would fit.
	sameSplit(t, buildSuper(tcpSpec{payload: pattern(5000, 1), flags: tcpFlagACK}, 1448), 4, testOffset+ethHdrLen+1000)
	sameSplit(t, buildSuper(tcpSpec{payload: pattern(5000, 1), flags: tcpFlagACK}, 1448), 4, testOffset+20)
}

// FuzzSegmentHeads checks, for arbitrary superframes, that emitHeads
// yields what emit yields, frame for frame, and drops alike.
func FuzzSegmentHeads(f *testing.F) {
	f.Add(buildSuper(tcpSpec{payload: pattern(5000, 1), seq: 7, flags: tcpFlagACK | tcpFlagPSH, opts: testTSOpts}, 1448))
	f.Add(buildSuper(tcpSpec{v6: true, payload: pattern(3000, 2), seq: 9, flags: tcpFlagACK | tcpFlagFIN}, 1428))
	f.Add(buildSuper(tcpSpec{payload: pattern(100, 3), flags: tcpFlagACK}, 41))
	f.Add(make([]byte, vnetHdrLen+ethHdrLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > superSize {
			return
		}
		sameSplit(t, data, 16, testOffset+ethHdrLen+1500)
	})
}

func TestSegmentHeadsAllocs(t *testing.T) {
	sf := buildSuper(tcpSpec{payload: pattern(60000, 5), flags: tcpFlagACK, opts: testTSOpts}, 1448)
	bufs, sizes := testBufs(64, testOffset+1514)
	tails := make([][]byte, 64)
	var s splitter
	allocs := testing.AllocsPerRun(50, func() {
		if !s.load(sf) {
			t.Fatal("load failed")
		}
		for s.active() {
			s.emitHeads(bufs, sizes, tails, testOffset)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per superframe, want 0", allocs)
	}
}

// BenchmarkSegmentHeads is BenchmarkSegment without the payload copy: the
// headers are written and each segment's payload is only summed.
func BenchmarkSegmentHeads(b *testing.B) {
	sf := buildSuper(tcpSpec{payload: pattern(65000, 5), flags: tcpFlagACK, opts: testTSOpts}, 1448)
	bufs, sizes := testBufs(64, testOffset+1514)
	tails := make([][]byte, 64)
	var s splitter
	b.SetBytes(int64(len(sf)))
	b.ReportAllocs()
	for b.Loop() {
		s.load(sf)
		for s.active() {
			s.emitHeads(bufs, sizes, tails, testOffset)
		}
	}
}
