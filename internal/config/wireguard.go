package config

import (
	"encoding/base64"
	"net/netip"

	"golang.org/x/crypto/curve25519"
)

// keyLen is the length of a base64 WireGuard key: 32 bytes in standard
// base64 with padding.
const keyLen = 44

// keyProblem is why a string is not a usable WireGuard key.
type keyProblem int

const (
	keyOK     keyProblem = iota
	keyFormat            // not 32 bytes in standard base64
	keyZero              // the all-zero key, which WireGuard treats as none
)

// parseKey decodes a WireGuard key in standard base64, as wg genkey and wg
// pubkey print it.
func parseKey(s string) ([32]byte, keyProblem) {
	var k [32]byte
	// The length check also refuses the line breaks that the decoder
	// would otherwise skip.
	if len(s) != keyLen {
		return k, keyFormat
	}
	// 44 characters without padding decode to 33 bytes: Decode needs
	// room for them before the length can be checked.
	var buf [33]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != len(k) {
		return k, keyFormat
	}
	copy(k[:], buf[:n])
	if k == ([32]byte{}) {
		return k, keyZero
	}
	return k, keyOK
}

// encodeKey returns k in standard base64.
func encodeKey(k [32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }

// tunnelPrefix holds derived tunnel addresses: the shared address space of
// RFC 6598, which is not routed on the internet and seldom used inside a
// site.
var tunnelPrefix = netip.MustParsePrefix("100.64.0.0/10")

// DeriveTunnelAddress returns the default tunnel address of the host with
// underlay address underlay: the low 22 bits of underlay inside
// 100.64.0.0/10, so that 10.1.2.3 becomes 100.65.2.3 and 198.18.0.1
// becomes 100.82.0.1. It returns the zero Addr when underlay is not IPv4 (an
// IPv4-mapped IPv6 address counts as IPv4).
func DeriveTunnelAddress(underlay netip.Addr) netip.Addr {
	underlay = underlay.Unmap()
	if !underlay.Is4() {
		return netip.Addr{}
	}
	u := underlay.As4()
	p := tunnelPrefix.Addr().As4()
	return netip.AddrFrom4([4]byte{p[0], p[1] | u[1]&0x3f, u[2], u[3]})
}

// HostPublicKey returns the public key of Host.PrivateKey, or the zero key
// when no private key was loaded.
func (c *Config) HostPublicKey() [32]byte {
	if !c.Host.HasPrivateKey {
		return [32]byte{}
	}
	return publicKey(c.Host.PrivateKey)
}

// publicKey returns the X25519 public key of priv. X25519 clamps priv as
// WireGuard does, so any 32 bytes are a usable private key.
func publicKey(priv [32]byte) [32]byte {
	var pub [32]byte
	b, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		// Only a low-order point yields an error; the base point is not
		// one, so this cannot happen.
		return pub
	}
	copy(pub[:], b)
	return pub
}
