package config

import (
	"errors"
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
