package crypto

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// KeyLen is the length of a WireGuard key (private, public or preshared).
const KeyLen = 32

// ErrKeyFormat is returned by ParseKey for text that is not the base64
// encoding of exactly KeyLen bytes.
var ErrKeyFormat = errors.New("key is not 32 bytes of base64")

// Key is a Curve25519 private or public key, or a preshared key, in the
// byte order WireGuard uses. It is a plain value: safe to copy and to use
// from several goroutines at once.
type Key [KeyLen]byte

// GenerateKey returns a new private key from the system's random source,
// clamped as RFC 7748 §5 describes, exactly as `wg genkey` does.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("cannot read random bytes: %w", err)
	}
	k.clamp()
	return k, nil
}

// clamp turns 32 random bytes into a Curve25519 scalar: a multiple of the
// cofactor 8 with the top bit clear and the second-highest bit set.
func (k *Key) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// Public returns the public key of the private key k, as `wg pubkey` prints
// it. The scalar multiplication clamps k itself, so an unclamped key gives
// the same public key as its clamped form, as in WireGuard.
func (k Key) Public() Key {
	var pub Key
	curve25519.ScalarBaseMult((*[KeyLen]byte)(&pub), (*[KeyLen]byte)(&k))
	return pub
}

// IsZero reports whether k is all zeros (no key).
func (k Key) IsZero() bool { return k == Key{} }

// String returns k in standard base64 with padding (44 characters), the
// format of `wg genkey`, `wg pubkey` and the config file.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// hex returns k in lower-case hex, the format of the UAPI protocol.
func (k Key) hex() string { return hex.EncodeToString(k[:]) }

// ParseKey decodes a key written in standard base64 (as String and `wg
// genkey` write it). Surrounding white space, such as the newline at the
// end of a key file, is ignored.
func ParseKey(s string) (Key, error) {
	var k Key
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != KeyLen {
		return Key{}, ErrKeyFormat
	}
	copy(k[:], b)
	return k, nil
}

// parseHexKey decodes a key as the UAPI protocol writes it.
func parseHexKey(s string) (Key, error) {
	var k Key
	if hex.DecodedLen(len(s)) != KeyLen {
		return Key{}, ErrKeyFormat
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return Key{}, ErrKeyFormat
	}
	return k, nil
}
