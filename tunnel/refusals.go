package tunnel

import (
	"maps"
	"sync"
)

// Reasons the control plane refuses input, counted in refusals. They are
// part of the status API (api.Status.Refused).
const (
	// refusedUnkeyed: an encrypted network replicated to a host without a
	// WireGuard key, which therefore does not carry it.
	refusedUnkeyed = "network_no_private_key"
	// refusedFileClash: an API network whose name, VNI or subnet is one
	// of this host's config file; the file wins.
	refusedFileClash = "network_clashes_with_config"
	// refusedApply: a network definition that could not be applied.
	refusedApply = "network_apply_failed"
	// refusedRecord: a record from gossip whose address does not fit its
	// network here (outside the subnet, the gateway, network or broadcast
	// address).
	refusedRecord = "record_outside_network"
)

// refusals counts control-plane input refused, by reason. It is safe for
// concurrent use.
type refusals struct {
	mu sync.Mutex
	n  map[string]uint64
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[string]uint64)
	}
	r.n[reason]++
}

// snapshot returns a copy of the counts, nil when nothing was refused.
func (r *refusals) snapshot() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.n) == 0 {
		return nil
	}
	return maps.Clone(r.n)
}
