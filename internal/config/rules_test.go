package config

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestCheckNameClaim: a name another host holds on the same network is
// refused naming the holder, ignoring case; the same name on another
// network, another name, and the claimer's own holding pass.
func TestCheckNameClaim(t *testing.T) {
	claim := NameHolder{Network: "blue", Name: "web", Host: "h2"}
	for _, tc := range []struct {
		held    NameHolder
		refused bool
	}{
		{NameHolder{Network: "blue", Name: "web", Host: "h1"}, true},
		{NameHolder{Network: "blue", Name: "WEB", Host: "h1"}, true},
		{NameHolder{Network: "red", Name: "web", Host: "h1"}, false},
		{NameHolder{Network: "blue", Name: "db", Host: "h1"}, false},
		{NameHolder{Network: "blue", Name: "web", Host: "h2"}, false},
	} {
		err := CheckNameClaim(claim, tc.held)
		var held *NameHeldError
		if got := errors.As(err, &held); got != tc.refused {
			t.Errorf("claim %+v against %+v: %v, want refused %v", claim, tc.held, err, tc.refused)
			continue
		}
		if tc.refused {
			if ep, host := held.Holder(); ep != tc.held.Name || host != "h1" || !strings.Contains(err.Error(), "held by host h1") {
				t.Errorf("refusal %q names %s on %s", err, ep, host)
			}
		}
	}
}

// TestParseTargets: a forward's and a publish's destinations follow one
// rule, except that only a forward may name an IPv4 address.
func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		in               string
		forward, publish bool
	}{
		{"web:80", true, true},
		{"web-1:65535", true, true},
		{"10.87.0.5:80", true, false},
		{"web", false, false},
		{":80", false, false},
		{"web:", false, false},
		{"web:0", false, false},
		{"web:65536", false, false},
		{"web:http", false, false},
		{"Web:80", false, false},
		{"-web:80", false, false},
		{"web:80:90", false, false},
		{"[::1]:80", false, false},
		{"::1:80", false, false},
	} {
		fh, fp, ferr := ParseOverlayTarget(tc.in)
		ph, pp, perr := ParsePublishTarget(tc.in)
		if (ferr == nil) != tc.forward || (perr == nil) != tc.publish {
			t.Errorf("%q: forward %v, publish %v; want accepted %v, %v", tc.in, ferr, perr, tc.forward, tc.publish)
			continue
		}
		if ferr == nil && fh+":"+strconv.Itoa(int(fp)) != tc.in {
			t.Errorf("%q: forward parsed as %s:%d", tc.in, fh, fp)
		}
		if perr == nil && (ph != fh || pp != fp) {
			t.Errorf("%q: publish parsed as %s:%d, forward as %s:%d", tc.in, ph, pp, fh, fp)
		}
	}
}

// TestCheckServiceVIP: a service's VIP is a host address of its network
// other than the gateway; without the network (the log), any unicast
// IPv4 address.
func TestCheckServiceVIP(t *testing.T) {
	n := &Network{Name: "blue", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Gateway: netip.MustParseAddr("10.77.0.1")}
	for _, c := range []struct {
		ip   string
		n    *Network
		good bool
	}{
		{"10.77.0.2", n, true},
		{"10.77.0.1", n, false},   // the gateway
		{"10.77.0.255", n, false}, // broadcast
		{"10.78.0.2", n, false},   // another subnet
		{"10.78.0.2", nil, true},
		{"0.0.0.0", nil, false},
		{"127.0.0.1", nil, false},
		{"224.0.0.5", nil, false},
		{"255.255.255.255", nil, false},
		{"fd00::1", nil, false},
	} {
		err := CheckServiceVIP(netip.MustParseAddr(c.ip), c.n)
		if (err == nil) != c.good {
			t.Errorf("CheckServiceVIP(%s, %v): %v, want good=%v", c.ip, c.n != nil, err, c.good)
		}
	}
	if err := CheckServiceVIP(netip.Addr{}, nil); err == nil {
		t.Error("the zero address passed")
	}
}
