package gossip

import (
	"fmt"

	"github.com/vxwire/vxwire/internal/config"
)

// Earlier versions persisted the gossiped network definitions in the
// daemon's state directory as
//
//	netState = "vxwn" format(1) = 1, clock(u64) count netEntry*
//
// DecodeNetworkState reads such a file, so that the daemon can carry the
// networks it lists into the Raft log once, on upgrade.

// netStateMagic starts a persisted network state; netStateFormat follows.
const (
	netStateMagic  = "vxwn"
	netStateFormat = 1
)

// DecodeNetworkState returns the live network definitions of a network
// state persisted by an earlier version, sorted as stored (by name).
// Tombstones, and definitions the config rules refuse, are left out. A
// state that does not decode fails with an error wrapping ErrMalformed.
func DecodeNetworkState(b []byte) ([]config.Network, error) {
	if len(b) < len(netStateMagic)+1 || string(b[:len(netStateMagic)]) != netStateMagic {
		return nil, fmt.Errorf("%w: not a network state", ErrMalformed)
	}
	if f := b[len(netStateMagic)]; f != netStateFormat {
		return nil, fmt.Errorf("%w: network state format %d is not supported", ErrMalformed, f)
	}
	r := reader{b: b[len(netStateMagic)+1:]}
	_ = r.uint64() // the clock of earlier versions
	es := r.netEntries()
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	if r.err != nil {
		return nil, r.err
	}
	var out []config.Network
	for _, e := range es {
		if !e.Deleted && config.CheckNetwork(&e.Def) == nil {
			out = append(out, e.Def)
		}
	}
	return out, nil
}
