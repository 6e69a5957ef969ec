package encap

import (
	"bytes"
	"errors"
	"testing"
)

func TestHeaderDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    Header
		wantErr error
	}{
		{"valid", []byte{0x08, 0, 0, 0, 0x00, 0x01, 0x00, 0}, Header{VNI: 256}, nil},
		{"max vni", []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}, Header{VNI: MaxVNI}, nil},
		{"zero vni", []byte{0x08, 0, 0, 0, 0, 0, 0, 0}, Header{VNI: 0}, nil},
		{"payload follows", []byte{0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xde, 0xad}, Header{VNI: 0x123456}, nil},
		{"reserved bits ignored", []byte{0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02, 0xff}, Header{VNI: 0x000102}, nil},
		{"reserved flags ignored", []byte{0xf7 | FlagI, 0, 0, 0, 0, 0, 7, 0}, Header{VNI: 7}, nil},
		{"no i flag", []byte{0x00, 0, 0, 0, 0, 1, 0, 0}, Header{}, ErrNoIFlag},
		{"only reserved flags", []byte{0xf7, 0, 0, 0, 0, 1, 0, 0}, Header{}, ErrNoIFlag},
		{"empty", nil, Header{}, ErrHeaderTooShort},
		{"seven bytes", []byte{0x08, 0, 0, 0, 0, 1, 0}, Header{}, ErrHeaderTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Header
			err := h.Decode(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode(%x) error = %v, want %v", tt.in, err, tt.wantErr)
			}
			if h != tt.want {
				t.Fatalf("Decode(%x) = %+v, want %+v", tt.in, h, tt.want)
			}
		})
	}
}

func TestHeaderEncode(t *testing.T) {
	tests := []struct {
		name string
		vni  uint32
		want []byte
	}{
		{"zero", 0, []byte{0x08, 0, 0, 0, 0, 0, 0, 0}},
		{"first overlay vni", 256, []byte{0x08, 0, 0, 0, 0, 1, 0, 0}},
		{"max", MaxVNI, []byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Reserved bits must be zeroed even over a dirty buffer.
			b := bytes.Repeat([]byte{0xff}, HeaderLen+2)
			h := Header{VNI: tt.vni}
			h.Encode(b)
			if !bytes.Equal(b[:HeaderLen], tt.want) {
				t.Fatalf("Encode(%d) = %x, want %x", tt.vni, b[:HeaderLen], tt.want)
			}
			if b[HeaderLen] != 0xff || b[HeaderLen+1] != 0xff {
				t.Fatalf("Encode wrote past the header: %x", b)
			}
			var got Header
			if err := got.Decode(b); err != nil || got != h {
				t.Fatalf("round trip = %+v, %v; want %+v", got, err, h)
			}
		})
	}
}

func TestHeaderEncodePanics(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		b    []byte
	}{
		{"vni too large", Header{VNI: MaxVNI + 1}, make([]byte, HeaderLen)},
		{"short buffer", Header{VNI: 1}, make([]byte, HeaderLen-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Encode did not panic")
				}
			}()
			tt.h.Encode(tt.b)
		})
	}
}

func TestOverhead(t *testing.T) {
	if Overhead != 50 {
		t.Fatalf("Overhead = %d, want 50", Overhead)
	}
	if 1500-Overhead != 1450 {
		t.Fatalf("container MTU over a 1500 underlay = %d, want 1450", 1500-Overhead)
	}
}

func TestHeaderAllocs(t *testing.T) {
	b := make([]byte, HeaderLen)
	var h Header
	allocs := testing.AllocsPerRun(100, func() {
		h.VNI = 4096
		h.Encode(b)
		if err := h.Decode(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Encode+Decode allocate %v times, want 0", allocs)
	}
}

// FuzzHeader checks that Decode never panics and that decode∘encode is a
// fix point: a decoded header encodes to canonical bytes that decode to the
// same header and encode to the same bytes.
func FuzzHeader(f *testing.F) {
	f.Add([]byte{0x08, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0, 1, 2, 3})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x00, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{0x08})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Header
		if err := h.Decode(b); err != nil {
			return
		}
		if h.VNI > MaxVNI {
			t.Fatalf("decoded VNI %d > MaxVNI", h.VNI)
		}
		out := make([]byte, HeaderLen)
		h.Encode(out)
		var h2 Header
		if err := h2.Decode(out); err != nil || h2 != h {
			t.Fatalf("re-decode = %+v, %v; want %+v", h2, err, h)
		}
		out2 := make([]byte, HeaderLen)
		h2.Encode(out2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("not a fix point: %x then %x", out, out2)
		}
		if !bytes.Equal(out[4:7], b[4:7]) {
			t.Fatalf("VNI bytes changed: %x -> %x", b[4:7], out[4:7])
		}
	})
}

func BenchmarkHeaderEncode(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, HeaderLen)
	h := Header{VNI: 4096}
	for i := 0; i < b.N; i++ {
		h.VNI = uint32(i) & MaxVNI
		h.Encode(buf)
	}
}

func BenchmarkHeaderDecode(b *testing.B) {
	b.ReportAllocs()
	buf := []byte{0x08, 0, 0, 0, 0, 0x10, 0, 0}
	var h Header
	for i := 0; i < b.N; i++ {
		if err := h.Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}
