package tunnel

import (
	"fmt"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// API networks this host knows from the log but does not carry: an
// encrypted one on a host without a WireGuard key, one that clashes with
// the config file, one whose gateway could not be opened. Each is left out
// of the effective config, counted once, and reported by network inspect.

// unappliedNet is an API network this host knows but does not carry, and
// why.
type unappliedNet struct {
	def    config.Network
	why    string // "no private_key_file", ...
	reason string // refusal counter
}

// failedNet is an API network definition whose gateway could not be
// opened; it stays left out until its definition changes.
type failedNet struct {
	def config.Network
	err string
}

// unlockedNoteUnapplied replaces e.unapplied, counting and logging each
// network that is newly left out.
func (e *Engine) unlockedNoteUnapplied(m map[string]unappliedNet) {
	for name, u := range m {
		if old, ok := e.unapplied[name]; ok && old.reason == u.reason && old.def == u.def {
			continue
		}
		e.refused.Add(u.reason)
		e.l.Warn("network not applied on this host", "network", name, "error", u.why)
	}
	e.unapplied = m
}

// unlockedUnappliedInfo describes a network this host does not carry.
func (e *Engine) unlockedUnappliedInfo(u unappliedNet) api.Network {
	n := e.unlockedNetworkInfo(u.def)
	n.Error = fmt.Sprintf("not applied on %s: %s", e.cfg.Host.Name, u.why)
	return n
}

// unlockedReapply applies the effective config again, after a change was
// taken back.
func (e *Engine) unlockedReapply() {
	if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
		e.l.Warn("cannot apply networks", "error", err)
	}
}
