package ipv4

import (
	"net/netip"
	"testing"
)

func TestBroadcast(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"10.77.0.0/24", "10.77.0.255"},
		{"10.77.0.5/24", "10.77.0.255"},
		{"10.96.0.0/16", "10.96.255.255"},
		{"192.0.2.8/30", "192.0.2.11"},
		{"192.0.2.1/32", "192.0.2.1"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"10.0.0.0/8", "10.255.255.255"},
		{"10.77.128.0/17", "10.77.255.255"},
		{"192.0.2.64/26", "192.0.2.127"},
	} {
		if got := Broadcast(netip.MustParsePrefix(tc.prefix)); got.String() != tc.want {
			t.Errorf("Broadcast(%s) = %s, want %s", tc.prefix, got, tc.want)
		}
	}
}
