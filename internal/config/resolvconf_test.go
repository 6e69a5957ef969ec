package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseResolvConf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"typical", "# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver 192.0.2.54\noptions ndots:2\n", []string{"192.0.2.53:53", "192.0.2.54:53"}},
		{"systemd stub", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n", nil},
		{"loopback skipped", "nameserver 127.0.0.1\nnameserver ::1\nnameserver ::ffff:127.0.0.1\nnameserver 192.0.2.53\n", []string{"192.0.2.53:53"}},
		{"ipv6", "nameserver 2001:db8::53\nnameserver fe80::1%eth0\n", []string{"[2001:db8::53]:53", "[fe80::1%eth0]:53"}},
		{"mapped", "nameserver ::ffff:192.0.2.53\n", []string{"192.0.2.53:53"}},
		{"duplicates", "nameserver 192.0.2.53\nnameserver 192.0.2.53\nnameserver ::ffff:192.0.2.53\n", []string{"192.0.2.53:53"}},
		{"comments", "; old\n# nameserver 192.0.2.1\nnameserver 192.0.2.53 # primary\nnameserver 192.0.2.54;backup\n", []string{"192.0.2.53:53", "192.0.2.54:53"}},
		{"whitespace", "  nameserver\t192.0.2.53  \r\nnameserver   192.0.2.54\r\n", []string{"192.0.2.53:53", "192.0.2.54:53"}},
		{"no final newline", "nameserver 192.0.2.53", []string{"192.0.2.53:53"}},
		{"malformed", "nameserver\nnameserver dns.example\nnameserver 192.0.2.300\nnameserver192.0.2.1\nNAMESERVER 192.0.2.2\nnameserver 192.0.2.0/24\n", nil},
		{"unusable", "nameserver 0.0.0.0\nnameserver ::\nnameserver 224.0.0.251\nnameserver ff02::fb\nnameserver 255.255.255.255\nnameserver fe80::1%a/b\n", nil},
		{"port syntax is not resolv.conf", "nameserver 192.0.2.53:5353\nnameserver [2001:db8::1]:53\n", nil},
		{"long line", "search " + strings.Repeat("a", 100000) + "\nnameserver 192.0.2.53\n", []string{"192.0.2.53:53"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ap := range ParseResolvConf([]byte(tt.in)) {
				got = append(got, ap.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzResolvConf checks that ParseResolvConf never panics, returns only
// usable, distinct servers on port 53, and that a file listing its result
// parses to the same result.
func FuzzResolvConf(f *testing.F) {
	for _, s := range []string{
		"",
		"nameserver 192.0.2.53\n",
		"nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
		"nameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver ::ffff:192.0.2.1\n",
		"; c\n# nameserver 192.0.2.1\nnameserver 192.0.2.53 # primary\nnameserver 192.0.2.54;x\n",
		"nameserver 0.0.0.0\nnameserver ::1\nnameserver 224.0.0.1\nnameserver\tfe80::1%a\r\n",
		"domain example.com\nsearch a b c\nnameserver 192.0.2.53\nnameserver 192.0.2.53",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := ParseResolvConf(data)
		seen := map[netip.AddrPort]bool{}
		var b strings.Builder
		for _, ap := range got {
			a := ap.Addr()
			if !a.IsValid() || ap.Port() != DefaultDNSPort || a.Is4In6() || a.IsLoopback() ||
				a.IsUnspecified() || a.IsMulticast() || !validZone(a.Zone()) || seen[ap] {
				t.Fatalf("unusable or repeated server %v in %v", ap, got)
			}
			if !strings.Contains(string(data), "nameserver") {
				t.Fatalf("server %v from a file without nameserver lines", ap)
			}
			seen[ap] = true
			b.WriteString("nameserver " + a.String() + "\n")
		}
		again := ParseResolvConf([]byte(b.String()))
		if !slices.Equal(got, again) {
			t.Fatalf("reparsed %v as %v", got, again)
		}
	})
}
