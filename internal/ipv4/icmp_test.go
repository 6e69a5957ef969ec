package ipv4

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func echoPacket(typ uint8, data []byte) []byte {
	e := Echo{Src: [4]byte{10, 0, 0, 2}, Dst: [4]byte{198, 18, 9, 1}, Type: typ, ID: 0x1234, Seq: 7, TTL: 64, Data: data}
	out := make([]byte, EchoLen(&e))
	PutEcho(out, &e)
	return out
}

func TestUnreachableFragNeeded(t *testing.T) {
	orig := echoPacket(ICMPEchoRequest, bytes.Repeat([]byte{0xa5}, 1400))
	out := make([]byte, MaxUnreachableLen)
	n := Unreachable(out, orig, [4]byte{10, 0, 0, 1}, ICMPCodeFragNeeded, 1250)
	if n != MinHeaderLen+ICMPHeaderLen+MinHeaderLen+8 {
		t.Fatalf("length %d", n)
	}
	p := out[:n]
	if Checksum(p[:MinHeaderLen], 0) != 0xffff || Checksum(p[MinHeaderLen:], 0) != 0xffff {
		t.Fatal("bad checksums")
	}
	if !bytes.Equal(p[OffSrc:OffSrc+4], []byte{10, 0, 0, 1}) || !bytes.Equal(p[OffDst:OffDst+4], []byte{10, 0, 0, 2}) {
		t.Fatalf("addresses %v -> %v", p[OffSrc:OffSrc+4], p[OffDst:OffDst+4])
	}
	m := p[MinHeaderLen:]
	if m[0] != ICMPUnreachable || m[1] != ICMPCodeFragNeeded || binary.BigEndian.Uint16(m[6:]) != 1250 {
		t.Fatalf("icmp header % x", m[:8])
	}
	if !bytes.Equal(m[ICMPHeaderLen:], orig[:MinHeaderLen+8]) {
		t.Fatal("quote is not the original header and 8 bytes")
	}
	// In place, over the original packet.
	in := append([]byte(nil), orig...)
	if k := Unreachable(in, in, [4]byte{10, 0, 0, 1}, ICMPCodeFragNeeded, 1250); k != n || !bytes.Equal(in[:k], p) {
		t.Fatal("in-place result differs")
	}
	if Unreachable(out[:10], orig, [4]byte{}, ICMPCodeAdminDenied, 0) != 0 || Unreachable(out, orig[:12], [4]byte{}, 4, 0) != 0 {
		t.Fatal("short buffers accepted")
	}
}

func TestParseEcho(t *testing.T) {
	req := echoPacket(ICMPEchoRequest, []byte("hello"))
	e, ok := ParseEcho(req)
	if !ok || e.Type != ICMPEchoRequest || e.ID != 0x1234 || e.Seq != 7 || string(e.Data) != "hello" {
		t.Fatalf("ParseEcho = %+v, %v", e, ok)
	}
	bad := append([]byte(nil), req...)
	bad[len(bad)-1] ^= 1
	frag := append([]byte(nil), req...)
	binary.BigEndian.PutUint16(frag[OffFlags:], 0x2000)
	unr := make([]byte, MaxUnreachableLen)
	unr = unr[:Unreachable(unr, req, [4]byte{1, 2, 3, 4}, ICMPCodeAdminDenied, 0)]
	for name, p := range map[string][]byte{"bad checksum": bad, "fragment": frag, "unreachable": unr, "short": req[:25]} {
		if _, ok := ParseEcho(p); ok {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzParseEcho(f *testing.F) {
	f.Add(echoPacket(ICMPEchoRequest, []byte("abc")))
	f.Add(echoPacket(ICMPEchoReply, nil))
	f.Fuzz(func(t *testing.T, p []byte) {
		e, ok := ParseEcho(p)
		out := make([]byte, MaxUnreachableLen)
		if n := Unreachable(out, p, [4]byte{10, 0, 0, 1}, ICMPCodeFragNeeded, 1250); n > 0 {
			if Checksum(out[:MinHeaderLen], 0) != 0xffff || Checksum(out[MinHeaderLen:n], 0) != 0xffff {
				t.Fatal("unreachable with bad checksum")
			}
		}
		if !ok {
			return
		}
		buf := make([]byte, EchoLen(&e))
		PutEcho(buf, &e)
		e2, ok := ParseEcho(buf)
		if !ok || e2.ID != e.ID || e2.Seq != e.Seq || e2.Type != e.Type || !bytes.Equal(e2.Data, e.Data) {
			t.Fatalf("round trip: %+v, %v", e2, ok)
		}
	})
}
