package crypto

import (
	"os/exec"
	"strings"
	"testing"
)

func TestGenerateKeyClamped(t *testing.T) {
	seen := make(map[Key]bool)
	for i := 0; i < 100; i++ {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if k[0]&7 != 0 || k[31]&128 != 0 || k[31]&64 == 0 {
			t.Fatalf("key %v not clamped", k)
		}
		if seen[k] {
			t.Fatal("repeated key")
		}
		seen[k] = true
	}
}

func TestParseKey(t *testing.T) {
	k, _ := GenerateKey()
	for _, s := range []string{k.String(), k.String() + "\n", "  " + k.String() + "\r\n"} {
		got, err := ParseKey(s)
		if err != nil || got != k {
			t.Fatalf("ParseKey(%q) = %v, %v", s, got, err)
		}
	}
	if len(k.String()) != 44 {
		t.Fatalf("String() = %q", k.String())
	}
	for _, s := range []string{"", "abc", k.String()[:43], k.String() + "AAAA", "!!!!" + k.String()[4:]} {
		if _, err := ParseKey(s); err == nil {
			t.Fatalf("ParseKey(%q) accepted", s)
		}
	}
	h, err := parseHexKey(k.hex())
	if err != nil || h != k {
		t.Fatalf("hex round trip: %v", err)
	}
}

// RFC 7748 §6.1 test vector (Alice).
func TestPublicVector(t *testing.T) {
	priv := mustHexKey(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
	want := mustHexKey(t, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
	if got := priv.Public(); got != want {
		t.Fatalf("Public = %x", got)
	}
}

func mustHexKey(t *testing.T, s string) Key {
	k, err := parseHexKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeysMatchWG checks that wg(8) derives the same public keys: from our
// private keys, and from its own.
func TestKeysMatchWG(t *testing.T) {
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("wg (wireguard-tools) is not installed")
	}
	for i := 0; i < 5; i++ {
		k, _ := GenerateKey()
		if got := wgPubkey(t, k.String()); got != k.Public().String() {
			t.Fatalf("wg pubkey %q, ours %q", got, k.Public())
		}
		out, err := exec.Command("wg", "genkey").Output()
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := ParseKey(string(out))
		if err != nil {
			t.Fatalf("parse wg genkey output %q: %v", out, err)
		}
		if theirs.String()+"\n" != string(out) {
			t.Fatalf("round trip of %q gives %q", out, theirs.String())
		}
		if got := wgPubkey(t, string(out)); got != theirs.Public().String() {
			t.Fatalf("wg pubkey %q, ours %q", got, theirs.Public())
		}
	}
}

func wgPubkey(t *testing.T, priv string) string {
	cmd := exec.Command("wg", "pubkey")
	cmd.Stdin = strings.NewReader(priv + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// FuzzParseKey feeds key files and UAPI hex keys: an accepted key
// re-encodes to text that parses back to the same key.
func FuzzParseKey(f *testing.F) {
	k := Key{1, 2, 3, 31: 0xff}
	f.Add(k.String())
	f.Add(k.String() + "\n")
	f.Add(k.hex())
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParseKey(s); err == nil {
			if back, err := ParseKey(k.String()); err != nil || back != k {
				t.Fatalf("ParseKey(%q) = %v, whose String does not parse back: %v %v", s, k, back, err)
			}
		}
		if k, err := parseHexKey(s); err == nil {
			if back, err := parseHexKey(k.hex()); err != nil || back != k {
				t.Fatalf("parseHexKey(%q) = %v, whose hex does not parse back: %v %v", s, k, back, err)
			}
		}
	})
}
