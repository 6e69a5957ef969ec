// Package socks is a SOCKS5 server (RFC 1928) for the daemon's laptop
// doors: no authentication, CONNECT and UDP ASSOCIATE. It parses and
// answers the protocol and relays bytes; where a destination goes is the
// caller's Dial, so the package knows nothing of the overlay.
//
// The wire format (RFC 1928 §3, §4, §6, §7), all integers big-endian:
//
//	greeting  VER=5 NMETHODS METHODS[NMETHODS]
//	choice    VER=5 METHOD                       (0x00 no auth, 0xFF none)
//	request   VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT
//	reply     VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT
//	udp       RSV=0x0000 FRAG ATYP DST.ADDR DST.PORT DATA
//
//	ATYP 1: 4-byte IPv4 address; 3: one length byte and 1..255 bytes of
//	domain name; 4: 16-byte IPv6 address.
package socks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// Protocol constants of RFC 1928.
const (
	Version = 5

	MethodNoAuth       = 0x00
	MethodNoAcceptable = 0xFF

	CmdConnect      = 0x01
	CmdBind         = 0x02
	CmdUDPAssociate = 0x03

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply codes (RFC 1928 §6).
const (
	RepSucceeded          = 0x00
	RepGeneralFailure     = 0x01
	RepNotAllowed         = 0x02 // connection not allowed by ruleset
	RepNetUnreachable     = 0x03
	RepHostUnreachable    = 0x04
	RepConnRefused        = 0x05
	RepTTLExpired         = 0x06
	RepCmdNotSupported    = 0x07
	RepAddrTypeNotSupport = 0x08
)

// Errors of the parser. A request that fails with ErrCommand or
// ErrAddrType is answered with the matching reply before the connection
// is closed; the others are closed without a reply.
var (
	ErrVersion   = errors.New("socks: not version 5")
	ErrMalformed = errors.New("socks: malformed message")
	ErrCommand   = errors.New("socks: unsupported command")
	ErrAddrType  = errors.New("socks: unsupported address type")
)

// Addr is a SOCKS destination: an IP address or a domain name, and a
// port. Exactly one of IP and Name is set.
type Addr struct {
	IP   netip.Addr
	Name string
	Port uint16
}

// Host is the address or the name, without the port.
func (a Addr) Host() string {
	if a.Name != "" {
		return a.Name
	}
	return a.IP.String()
}

// String is "host:port", with IPv6 addresses in brackets.
func (a Addr) String() string {
	if a.Name != "" {
		return a.Name + ":" + strconv.Itoa(int(a.Port))
	}
	return netip.AddrPortFrom(a.IP, a.Port).String()
}

// Request is a client's request: the command and its destination.
type Request struct {
	Cmd byte
	Dst Addr
}

// ReadGreeting reads the client's greeting and reports whether it offers
// "no authentication", the only method served.
func ReadGreeting(r io.Reader) (noAuth bool, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return false, err
	}
	if hdr[0] != Version {
		return false, ErrVersion
	}
	if hdr[1] == 0 {
		return false, ErrMalformed
	}
	var methods [255]byte
	m := methods[:hdr[1]]
	if _, err := io.ReadFull(r, m); err != nil {
		return false, err
	}
	for _, b := range m {
		if b == MethodNoAuth {
			return true, nil
		}
	}
	return false, nil
}

// ReadRequest reads one request. On ErrCommand and ErrAddrType the whole
// request has not necessarily been read; the caller replies and closes.
func ReadRequest(r io.Reader) (Request, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Request{}, err
	}
	if hdr[0] != Version {
		return Request{}, ErrVersion
	}
	if hdr[2] != 0 {
		return Request{}, ErrMalformed
	}
	req := Request{Cmd: hdr[1]}
	if req.Cmd != CmdConnect && req.Cmd != CmdBind && req.Cmd != CmdUDPAssociate {
		return req, ErrCommand
	}
	dst, err := readAddr(r, hdr[3])
	if err != nil {
		return req, err
	}
	req.Dst = dst
	return req, nil
}

// readAddr reads DST.ADDR and DST.PORT of address type atyp.
func readAddr(r io.Reader, atyp byte) (Addr, error) {
	var buf [1 + 255 + 2]byte
	var a Addr
	switch atyp {
	case atypIPv4:
		if _, err := io.ReadFull(r, buf[:4+2]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom4([4]byte(buf[:4]))
		a.Port = binary.BigEndian.Uint16(buf[4:])
	case atypIPv6:
		if _, err := io.ReadFull(r, buf[:16+2]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom16([16]byte(buf[:16]))
		a.Port = binary.BigEndian.Uint16(buf[16:])
	case atypDomain:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return a, err
		}
		n := int(buf[0])
		if n == 0 {
			return a, ErrMalformed
		}
		if _, err := io.ReadFull(r, buf[1:1+n+2]); err != nil {
			return a, err
		}
		name, err := checkName(buf[1 : 1+n])
		if err != nil {
			return a, err
		}
		a.Name = name
		a.Port = binary.BigEndian.Uint16(buf[1+n:])
	default:
		return a, ErrAddrType
	}
	return a, nil
}

// checkName accepts a domain name of printable ASCII without spaces; an
// IP literal sent as a name is returned as is (the caller's resolver
// treats it as an address).
func checkName(b []byte) (string, error) {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("%w: domain name with byte %#02x", ErrMalformed, c)
		}
	}
	return string(b), nil
}

// AppendAddr appends ATYP, the address and the port of a. A name longer
// than 255 bytes is truncated; an invalid IP is written as 0.0.0.0.
func AppendAddr(b []byte, a Addr) []byte {
	switch {
	case a.Name != "":
		n := min(len(a.Name), 255)
		b = append(b, atypDomain, byte(n))
		b = append(b, a.Name[:n]...)
	case a.IP.Is6():
		ip := a.IP.As16()
		b = append(b, atypIPv6)
		b = append(b, ip[:]...)
	default:
		var ip [4]byte
		if a.IP.IsValid() {
			ip = a.IP.Unmap().As4()
		}
		b = append(b, atypIPv4)
		b = append(b, ip[:]...)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// AppendReply appends a reply with code rep and bound address bind.
func AppendReply(b []byte, rep byte, bind netip.AddrPort) []byte {
	b = append(b, Version, rep, 0)
	return AppendAddr(b, Addr{IP: bind.Addr(), Port: bind.Port()})
}

// ParseUDP splits a UDP ASSOCIATE datagram into its destination and
// payload, which aliases b. Fragments (FRAG ≠ 0) are refused with
// ErrMalformed: the server drops them, as RFC 1928 §7 allows.
func ParseUDP(b []byte) (Addr, []byte, error) {
	if len(b) < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0 {
		return Addr{}, nil, ErrMalformed
	}
	r := &sliceReader{b: b[4:]}
	a, err := readAddr(r, b[3])
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = ErrMalformed
		}
		return Addr{}, nil, err
	}
	return a, r.b, nil
}

// AppendUDPHeader appends the header of a UDP ASSOCIATE datagram from or
// to a.
func AppendUDPHeader(b []byte, a Addr) []byte {
	b = append(b, 0, 0, 0)
	return AppendAddr(b, a)
}

// sliceReader reads from a byte slice without allocating a bytes.Reader.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
