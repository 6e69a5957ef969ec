package config

import (
	"testing"
)

// FuzzParseSubnet feeds subnets as the API and the CLI take them: an
// accepted subnet is IPv4, at most /30, without host bits, and its text
// parses back to itself.
func FuzzParseSubnet(f *testing.F) {
	for _, s := range []string{"10.77.0.0/24", "10.77.0.1/24", "0.0.0.0/0", "10.0.0.0/31", "::/0", "1.2.3.4", "10.77.0.0/024", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSubnet(s)
		if err != nil {
			return
		}
		if !p.Addr().Is4() || p.Bits() > 30 || p.Masked() != p {
			t.Fatalf("ParseSubnet(%q) accepted %v", s, p)
		}
		if back, err := ParseSubnet(p.String()); err != nil || back != p {
			t.Fatalf("%v does not parse back: %v %v", p, back, err)
		}
	})
}
