package consensus

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/config"
)

// TestTakeRetryIsIdempotent: a Take applied twice with the same ID (a
// retry after a lost answer) yields one block, not two.
func TestTakeRetryIsIdempotent(t *testing.T) {
	f := &fsm{pins: make(map[pinKey]Pin)}
	apply := func(i uint64, c command) result {
		b, _ := json.Marshal(c)
		return f.Apply(&raft.Log{Index: i, Type: raft.LogCommand, Data: b}).(result)
	}
	c := command{Op: opTake, Network: "blue", Subnet: netip.MustParsePrefix("10.77.0.0/24"), Bits: 28, Host: "h1", ID: 7}
	r1, r2 := apply(1, c), apply(2, c)
	if r1.Err != "" || r1.Block != r2.Block {
		t.Fatalf("take and its retry: %+v, %+v", r1, r2)
	}
	c.ID = 9
	if r3 := apply(3, c); r3.Block == r1.Block {
		t.Fatalf("a new take got the same block %s", r3.Block)
	}
	// Entries at or below the applied index are skipped (a replay after
	// a restart).
	c.ID = 11
	if r := apply(3, c); r.Err == "" {
		t.Fatalf("entry 3 applied twice: %+v", r)
	}
}

// TestApplyRefusesMalformed: garbage in the log is refused, not applied.
func TestApplyRefusesMalformed(t *testing.T) {
	f := &fsm{pins: make(map[pinKey]Pin)}
	for i, data := range []string{`{`, `{"op":"take","network":"blue","host":"h1","subnet":"10.0.0.0/24","bits":40}`, `{"op":"drop"}`} {
		r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: []byte(data)}).(result)
		if r.Err == "" {
			t.Errorf("%s applied", data)
		}
	}
	if len(f.blocks) != 0 {
		t.Fatalf("blocks after garbage: %v", f.blocks)
	}
}

// TestPinPassesWithinHost: a host may hand its pinned address from one of
// its endpoints to another, and the late removal of the old pin leaves the
// new one; another host's pin of the same address is still refused.
func TestPinPassesWithinHost(t *testing.T) {
	f := &fsm{pins: make(map[pinKey]Pin)}
	var i uint64
	apply := func(c command) result {
		i++
		b, _ := json.Marshal(c)
		return f.Apply(&raft.Log{Index: i, Type: raft.LogCommand, Data: b}).(result)
	}
	ip := netip.MustParseAddr("10.87.0.200")
	pin := func(op, host, ep string) command {
		return command{Op: op, Network: "vx", IP: ip, Host: host, Endpoint: ep}
	}
	if r := apply(pin(opPin, "h1", "reservation")); r.Err != "" {
		t.Fatalf("first pin: %s", r.Err)
	}
	if r := apply(pin(opPin, "h1", "web")); r.Err != "" {
		t.Fatalf("the same host's pin for another endpoint: %s", r.Err)
	}
	apply(pin(opUnpin, "h1", "reservation"))
	if p, ok := f.pinned("vx", ip); !ok || p.Endpoint != "web" || p.Host != "h1" {
		t.Fatalf("after the old pin's removal: %+v, %v; want h1/web", p, ok)
	}
	if r := apply(pin(opPin, "h2", "db")); r.Err == "" {
		t.Fatal("another host pinned an address h1 holds")
	}
}

// TestApplyChecksNamesWithConfigRules: every command names its network
// and host by the config rules (config.CheckLabel, config.CheckHostName),
// whatever its operation; the same pin with valid names applies.
func TestApplyChecksNamesWithConfigRules(t *testing.T) {
	a := &applier{f: &fsm{pins: make(map[pinKey]Pin)}}
	ip := netip.MustParseAddr("10.77.0.9")
	for _, tc := range []struct {
		network, host string
		ok            bool
	}{
		{"blue", "h1", true},
		{"blue", "host 1.example", true},
		{"Blue", "h1", false},
		{"blue_1", "h1", false},
		{"-blue", "h1", false},
		{"", "h1", false},
		{"blue", "", false},
		{"blue", "h1\n", false},
		{"blue", "h\x001", false},
		{"blue", strings.Repeat("h", config.MaxHostNameLen+1), false},
	} {
		for _, c := range []command{
			{Op: opPin, Network: tc.network, IP: ip, Host: tc.host, Endpoint: "web"},
			{Op: opClaim, Network: tc.network, Endpoint: "web", Host: tc.host, ID: 1},
		} {
			r := a.apply(c)
			if (r.Err == "") != tc.ok {
				t.Errorf("%s on network %q by host %q: %q, want applied %v", c.Op, tc.network, tc.host, r.Err, tc.ok)
			}
			if tc.ok { // free the address and the name for the next host
				a.apply(command{Op: opUnpin, Network: tc.network, IP: ip, Host: tc.host, Endpoint: "web"})
				a.apply(command{Op: opUnclaim, Network: tc.network, Endpoint: "web", Host: tc.host})
			}
		}
	}
}
