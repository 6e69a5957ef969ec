package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestEgressDeny(t *testing.T) {
	c, err := Parse("h1.toml", []byte(doc(hostBlock, []string{
		`egress_deny = ["192.0.2.7", "10.0.0.0/8", "203.0.113.0/24:443", "udp:0.0.0.0/0:8472", "tcp:198.51.100.1:22"]`,
	})))
	if err != nil {
		t.Fatal(err)
	}
	want := []EgressRule{
		{Prefix: netip.MustParsePrefix("192.0.2.7/32")},
		{Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Port: 443},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Port: 8472, Proto: "udp"},
		{Prefix: netip.MustParsePrefix("198.51.100.1/32"), Port: 22, Proto: "tcp"},
	}
	if !slices.Equal(c.Host.EgressDeny, want) {
		t.Fatalf("EgressDeny = %v, want %v", c.Host.EgressDeny, want)
	}
	if enc := string(c.Encode()); !strings.Contains(enc, `egress_deny = ["192.0.2.7/32", "10.0.0.0/8", "203.0.113.0/24:443", "udp:0.0.0.0/0:8472", "tcp:198.51.100.1/32:22"]`) {
		t.Fatalf("Encode:\n%s", enc)
	}
	other := *c
	other.Host.EgressDeny = want[:1]
	if c.Equal(&other) {
		t.Fatal("configs with different egress_deny compare equal")
	}
}

func TestEgressDenyErrors(t *testing.T) {
	for _, tt := range []errorCase{
		{"egress deny not an array", doc(hostBlock, []string{`egress_deny = "10.0.0.0/8"`}), []string{
			`h1.toml:4: host.egress_deny: expected an array of strings, got string "10.0.0.0/8"`}},
		{"egress deny entries", doc(hostBlock, []string{`egress_deny = ["10.0.0.0/8", 8, "10.0.0.1/8", "10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8:0", "10.0.0.0/8:http", "sctp:10.0.0.0/8", "", "10.0.0.0/33"]`}), []string{
			`h1.toml:4: host.egress_deny[1]: expected a string, got integer 8`,
			`h1.toml:4: host.egress_deny[2]: "10.0.0.1/8" has host bits set; use 10.0.0.0/8`,
			`h1.toml:4: host.egress_deny[3]: 10.0.0.0/8 is already listed as host.egress_deny[0]`,
			`h1.toml:4: host.egress_deny[4]: "2001:db8::/32" is not an IPv4 entry: egress is IPv4 only; use [tcp:|udp:]CIDR[:PORT], such as 10.0.0.0/8 or 203.0.113.7:443`,
			`h1.toml:4: host.egress_deny[5]: "10.0.0.0/8:0" has port "0"; use 1..65535, or leave the port out for every port`,
			`h1.toml:4: host.egress_deny[6]: "10.0.0.0/8:http" has port "http"; use 1..65535, or leave the port out for every port`,
			`h1.toml:4: host.egress_deny[7]: "sctp:10.0.0.0/8" names protocol "sctp"; use tcp: or udp:, or no protocol for both`,
			`h1.toml:4: host.egress_deny[8]: must not be empty`,
			`h1.toml:4: host.egress_deny[9]: "10.0.0.0/33" is not an egress deny entry: use [tcp:|udp:]CIDR[:PORT], such as 10.0.0.0/8 or 203.0.113.7:443`}},
		{"egress deny on several lines", doc(hostBlock, []string{`egress_deny = [`, `  "10.0.0.0/8",`, `  "10.0.0.300",`, `]`}), []string{
			`h1.toml:6: host.egress_deny[1]: "10.0.0.300" is not an egress deny entry: use [tcp:|udp:]CIDR[:PORT], such as 10.0.0.0/8 or 203.0.113.7:443`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("h1.toml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; parsed\n%s", c.Encode())
			}
			if got := messages(t, err); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// FuzzEgressRule checks that ParseEgressRule never panics and that what it
// accepts is a fix point of String.
func FuzzEgressRule(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "10.0.0.0/8", "203.0.113.0/24:443", "udp:0.0.0.0/0:8472",
		"tcp:198.51.100.1:22", "tcp:udp:1.2.3.4", "1.2.3.4:", ":80", "::1", "[::1]:80", "1.2.3.4/32:65536"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseEgressRule(s)
		if err != nil {
			return
		}
		if !r.Prefix.Addr().Is4() || r.Prefix.Masked() != r.Prefix {
			t.Fatalf("%q parsed to %v", s, r)
		}
		r2, err := ParseEgressRule(r.String())
		if err != nil || r2 != r {
			t.Fatalf("%q → %v → %q → %v, %v", s, r, r.String(), r2, err)
		}
	})
}
