package socks

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
)

func TestReadGreeting(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		noAuth bool
		err    error
	}{
		{"no auth", []byte{5, 1, 0}, true, nil},
		{"no auth among others", []byte{5, 3, 2, 1, 0}, true, nil},
		{"only user/pass", []byte{5, 1, 2}, false, nil},
		{"socks4", []byte{4, 1, 0}, false, ErrVersion},
		{"no methods", []byte{5, 0}, false, ErrMalformed},
		{"truncated", []byte{5, 2, 0}, false, io.ErrUnexpectedEOF},
		{"empty", nil, false, io.EOF},
		{"http", []byte("GET / HTTP/1.1\r\n"), false, ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noAuth, err := ReadGreeting(bytes.NewReader(tt.in))
			if noAuth != tt.noAuth || !errors.Is(err, tt.err) {
				t.Fatalf("ReadGreeting = %v, %v; want %v, %v", noAuth, err, tt.noAuth, tt.err)
			}
		})
	}
}

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Request
		err  error
	}{
		{"connect ipv4", []byte{5, 1, 0, 1, 10, 77, 0, 10, 0x1f, 0x40}, Request{CmdConnect, Addr{IP: netip.MustParseAddr("10.77.0.10"), Port: 8000}}, nil},
		{"connect name", append(append([]byte{5, 1, 0, 3, 8}, "web.blue"...), 0, 80), Request{CmdConnect, Addr{Name: "web.blue", Port: 80}}, nil},
		{"udp ipv6", append(append([]byte{5, 3, 0, 4}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 0, 53), Request{CmdUDPAssociate, Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 53}}, nil},
		{"bind", []byte{5, 2, 0, 1, 0, 0, 0, 0, 0, 0}, Request{CmdBind, Addr{IP: netip.IPv4Unspecified()}}, nil},
		{"unknown command", []byte{5, 9, 0, 1, 0, 0, 0, 0, 0, 0}, Request{Cmd: 9}, ErrCommand},
		{"unknown atyp", []byte{5, 1, 0, 7, 0, 0}, Request{Cmd: CmdConnect}, ErrAddrType},
		{"reserved set", []byte{5, 1, 1, 1, 0, 0, 0, 0, 0, 0}, Request{}, ErrMalformed},
		{"version 4", []byte{4, 1, 0, 1, 0, 0, 0, 0, 0, 0}, Request{}, ErrVersion},
		{"empty name", []byte{5, 1, 0, 3, 0, 0, 80}, Request{Cmd: CmdConnect}, ErrMalformed},
		{"name with space", append(append([]byte{5, 1, 0, 3, 3}, "a b"...), 0, 80), Request{Cmd: CmdConnect}, ErrMalformed},
		{"name with nul", append(append([]byte{5, 1, 0, 3, 3}, "a\x00b"...), 0, 80), Request{Cmd: CmdConnect}, ErrMalformed},
		{"truncated name", []byte{5, 1, 0, 3, 200, 'a'}, Request{Cmd: CmdConnect}, io.ErrUnexpectedEOF},
		{"truncated ipv4", []byte{5, 1, 0, 1, 10, 77}, Request{Cmd: CmdConnect}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadRequest(bytes.NewReader(tt.in))
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Fatalf("ReadRequest = %+v, %v; want %+v, %v", got, err, tt.want, tt.err)
			}
			if err == nil {
				if enc := AppendRequest(nil, got); !bytes.Equal(enc, tt.in) {
					t.Fatalf("AppendRequest = %x, want %x", enc, tt.in)
				}
			}
		})
	}
}

func TestParseUDP(t *testing.T) {
	a := Addr{Name: "web.blue", Port: 53}
	dg := append(AppendUDPHeader(nil, a), "query"...)
	dst, payload, err := ParseUDP(dg)
	if err != nil || dst != a || string(payload) != "query" {
		t.Fatalf("ParseUDP = %+v, %q, %v", dst, payload, err)
	}
	for name, b := range map[string][]byte{
		"fragment": append([]byte{0, 0, 1}, dg[3:]...),
		"rsv":      append([]byte{0, 1, 0}, dg[3:]...),
		"short":    {0, 0, 0},
		"cut addr": {0, 0, 0, 1, 10, 77},
		"atyp":     {0, 0, 0, 9, 1, 2, 3, 4, 0, 53},
	} {
		if _, _, err := ParseUDP(b); err == nil {
			t.Errorf("%s: ParseUDP accepted %x", name, b)
		}
	}
}

// FuzzReadRequest feeds arbitrary bytes to the request parser: it must
// not panic, and an accepted request must encode back to the bytes it
// was read from (a fix point).
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 10, 77, 0, 10, 0x1f, 0x40})
	f.Add(append(append([]byte{5, 1, 0, 3, 8}, "web.blue"...), 0, 80))
	f.Add(append(append([]byte{5, 3, 0, 4}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 0, 53))
	f.Add([]byte{5, 1, 0, 3, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		req, err := ReadRequest(r)
		if err != nil {
			return
		}
		used := b[:len(b)-r.Len()]
		if enc := AppendRequest(nil, req); !bytes.Equal(enc, used) {
			t.Fatalf("round trip: read %x, encoded %x", used, enc)
		}
	})
}

// FuzzParseUDP checks the UDP ASSOCIATE header parser the same way.
func FuzzParseUDP(f *testing.F) {
	f.Add(append(AppendUDPHeader(nil, Addr{Name: "web.blue", Port: 53}), "q"...))
	f.Add(append(AppendUDPHeader(nil, Addr{IP: netip.MustParseAddr("10.77.0.10"), Port: 53}), "q"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		dst, payload, err := ParseUDP(b)
		if err != nil {
			return
		}
		enc := append(AppendUDPHeader(nil, dst), payload...)
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip: parsed %x, encoded %x", b, enc)
		}
	})
}

// FuzzReadGreeting checks that the greeting parser never panics, reads
// exactly the greeting, and accepts it only when it is version 5 with at
// least one method, naming "no authentication" exactly when one of its
// methods is MethodNoAuth.
func FuzzReadGreeting(f *testing.F) {
	f.Add([]byte{5, 1, 0})
	f.Add([]byte{5, 2, 2, 0})
	f.Add([]byte{5, 1, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		noAuth, err := ReadGreeting(r)
		if err != nil {
			if noAuth {
				t.Fatalf("%x: refused (%v) yet no authentication chosen", b, err)
			}
			return
		}
		if len(b) < 2 || b[0] != Version || b[1] == 0 || len(b) < 2+int(b[1]) {
			t.Fatalf("%x: accepted a malformed greeting", b)
		}
		methods := b[2 : 2+int(b[1])]
		if used := len(b) - r.Len(); used != len(methods)+2 {
			t.Fatalf("%x: read %d bytes of a %d-byte greeting", b, used, len(methods)+2)
		}
		if want := bytes.IndexByte(methods, MethodNoAuth) >= 0; noAuth != want {
			t.Fatalf("%x: no authentication %v, want %v", b, noAuth, want)
		}
	})
}

// AppendRequest appends a request, as a client sends it: the encoder the
// tests check ReadRequest against.
func AppendRequest(b []byte, req Request) []byte {
	b = append(b, Version, req.Cmd, 0)
	return AppendAddr(b, req.Dst)
}
