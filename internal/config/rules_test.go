package config

import (
	"errors"
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
