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
