package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that every Config it
// returns is a fix point of Encode: Parse(Encode(c)) succeeds, equals c and
// encodes to the same bytes.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.toml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tt := range errorCases() {
		f.Add([]byte(tt.in))
	}
	for _, s := range []string{
		doc(hostBlock, []string{`dns_upstream = ["::ffff:192.0.2.1", "[fe80::1%eth0]:5353", "2001:db8::1"]`, `metrics = "[::]:9100"`}),
		doc(hostBlock, []string{`rotate_every = "0"`, `peer_timeout = "1h1m1.5s"`, `wg_name = "wg.A_b-0"`}),
		doc(hostBlock, []string{`tunnel_address = "100.64.0.1"`}, peerBlock, []string{`tunnel_address = "100.127.255.255"`, `wg_port = 1`}),
		doc([]string{
			`host = { name = "h1", address = "198.18.0.1", private_key_file = "/k", secret_file = "/s", api_group = "g" }`,
			`peer = [{ name = "h2", address = "198.18.0.2", public_key = "` + testPubBob + `" }]`,
			`network = [{ name = "blue", vni = 256, subnet = "10.77.0.0/24", encrypted = true, egress = false }]`,
			`endpoint = [{ network = "blue", name = "web", netns = "/n", aliases = ["a", "b-2"] }]`,
		}),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			if c != nil {
				t.Fatalf("Config with error %v", err)
			}
			return
		}
		enc := c.Encode()
		c2, err := Parse("fuzz.toml", enc)
		if err != nil {
			t.Fatalf("Parse(Encode(c)): %v\n%s", err, enc)
		}
		if !c.Equal(c2) {
			t.Fatalf("Parse(Encode(c)) differs from c:\n%s\n---\n%s", enc, c2.Encode())
		}
		if enc2 := c2.Encode(); string(enc2) != string(enc) {
			t.Fatalf("Encode not stable:\n%s\n---\n%s", enc, enc2)
		}
	})
}
