package tunnel

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/internal/ether"
)

func TestEthHeaderDecode(t *testing.T) {
	frame := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x08, 0x06, 0xaa,
	}
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{"arp broadcast", frame, nil},
		{"exactly header", frame[:14], nil},
		{"short", frame[:13], ErrFrameTooShort},
		{"empty", nil, ErrFrameTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h EthHeader
			err := h.Decode(tt.in)
			if err != tt.wantErr {
				t.Fatalf("Decode() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if h.Dst != Broadcast || !h.Dst.IsMulticast() || h.Src.IsMulticast() || h.Type != ether.TypeARP {
				t.Fatalf("decoded %+v", h)
			}
			out := make([]byte, ether.HeaderLen)
			h.Encode(out)
			if !bytes.Equal(out, tt.in[:ether.HeaderLen]) {
				t.Fatalf("Encode() = %x, want %x", out, tt.in[:ether.HeaderLen])
			}
		})
	}
}

func TestARPDecode(t *testing.T) {
	want := ARP{Op: ether.ARPRequest, SHA: MAC{2, 0, 0, 0, 0, 1}, SPA: netip.MustParseAddr("10.77.0.2"), TPA: netip.MustParseAddr("10.77.0.3")}
	b := make([]byte, ether.ARPLen)
	want.Encode(b)
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		wantErr error
	}{
		{"request", func(b []byte) []byte { return b }, nil},
		{"short", func(b []byte) []byte { return b[:27] }, ErrARPTooShort},
		{"not ethernet", func(b []byte) []byte { c := bytes.Clone(b); c[1] = 6; return c }, ErrARPNotIPv4},
		{"not ipv4", func(b []byte) []byte { c := bytes.Clone(b); c[3] = 0xdd; return c }, ErrARPNotIPv4},
		{"bad hlen", func(b []byte) []byte { c := bytes.Clone(b); c[4] = 8; return c }, ErrARPNotIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a ARP
			err := a.Decode(tt.mutate(b))
			if err != tt.wantErr {
				t.Fatalf("Decode() = %v, want %v", err, tt.wantErr)
			}
			if err == nil && a != want {
				t.Fatalf("Decode() = %+v, want %+v", a, want)
			}
		})
	}
}

func TestMACString(t *testing.T) {
	if got := (MAC{0x02, 0xab, 0, 1, 0xfe, 0xff}).String(); got != "02:ab:00:01:fe:ff" {
		t.Fatalf("String() = %q", got)
	}
}

func FuzzEthARP(f *testing.F) {
	a := ARP{Op: ether.ARPReply, SHA: MAC{2, 1, 2, 3, 4, 5}, SPA: netip.MustParseAddr("10.0.0.1"), TPA: netip.MustParseAddr("10.0.0.2")}
	frame := make([]byte, ether.HeaderLen+ether.ARPLen)
	(&EthHeader{Dst: Broadcast, Src: a.SHA, Type: ether.TypeARP}).Encode(frame)
	a.Encode(frame[ether.HeaderLen:])
	f.Add(frame)
	f.Add([]byte{})
	f.Add(frame[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		var h EthHeader
		if err := h.Decode(b); err != nil {
			return
		}
		out := make([]byte, ether.HeaderLen)
		h.Encode(out)
		if !bytes.Equal(out, b[:ether.HeaderLen]) {
			t.Fatalf("ethernet round trip: %x != %x", out, b[:ether.HeaderLen])
		}
		if h.Type != ether.TypeARP {
			return
		}
		var p ARP
		if err := p.Decode(b[ether.HeaderLen:]); err != nil {
			return
		}
		re := make([]byte, ether.ARPLen)
		p.Encode(re)
		var q ARP
		if err := q.Decode(re); err != nil || q != p {
			t.Fatalf("arp round trip: %+v -> %+v (%v)", p, q, err)
		}
	})
}
