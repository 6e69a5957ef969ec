package consensus

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/config"
)

// Endpoint names live in the same log as address blocks and networks: a
// host claims (network, name) with one entry before it attaches an
// endpoint, and releases it with another when the endpoint goes. The
// state machine refuses a claim of a name another host holds (the rule is
// config.CheckNameClaim), so of two hosts racing for one name exactly one
// wins, on every host alike. Aliases are shared and never claimed.

// Operations on name claims.
const (
	opClaim   = "claim"
	opUnclaim = "unclaim"
)

// Claim is an endpoint name held in the log.
type Claim struct {
	// Network and Name are what is held; Host holds it.
	Network string `json:"network"`
	Name    string `json:"name"`
	Host    string `json:"host"`
	// ID identifies the attach that claimed it: a release names it, so a
	// late release of an earlier attach cannot drop a newer claim of the
	// same name by the same host.
	ID uint64 `json:"id"`
}

type claimKey struct{ Network, Name string }

// key returns the claim's key: names compare ignoring case (config.SameName).
func claimKeyOf(network, name string) claimKey {
	return claimKey{network, strings.ToLower(name)}
}

func (c Claim) holder() config.NameHolder {
	return config.NameHolder{Network: c.Network, Name: c.Name, Host: c.Host}
}

// checkClaim validates the claim part of a command: the name is an
// endpoint's (a DNS label), and a claim carries its ID.
func (c *command) checkClaim() error {
	if c.Net != nil || c.IP.IsValid() {
		return errors.New("a name claim carries only a network, a name and an ID")
	}
	if err := config.CheckLabel(c.Endpoint); err != nil {
		return err
	}
	if c.Op == opClaim && c.ID == 0 {
		return errors.New("a name claim needs an ID")
	}
	return nil
}

// unlockedClaim gives c.Endpoint of c.Network to c.Host unless another
// host holds it. The same host's claim replaces its own (a new attach of
// the name, or one after a restart).
func (f *fsm) unlockedClaim(c command) result {
	k := claimKeyOf(c.Network, c.Endpoint)
	want := Claim{Network: c.Network, Name: c.Endpoint, Host: c.Host, ID: c.ID}
	if o, ok := f.claims[k]; ok {
		if err := config.CheckNameClaim(want.holder(), o.holder()); err != nil {
			return result{Err: err.Error(), Holder: o.Host, HeldName: o.Name}
		}
	}
	if f.claims == nil {
		f.claims = make(map[claimKey]Claim)
	}
	f.claims[k] = want
	return result{}
}

// unlockedUnclaim drops c.Host's claim of c.Endpoint, if c.ID (when not 0)
// is the claim's.
func (f *fsm) unlockedUnclaim(c command) result {
	k := claimKeyOf(c.Network, c.Endpoint)
	if o, ok := f.claims[k]; ok && o.Host == c.Host && (c.ID == 0 || c.ID == o.ID) {
		delete(f.claims, k)
	}
	return result{}
}

// unlockedDropClaims drops every claim of network (a removed network).
func (f *fsm) unlockedDropClaims(network string) {
	for k := range f.claims {
		if k.Network == network {
			delete(f.claims, k)
		}
	}
}

// claimList returns the claims sorted by network, then name.
func (f *fsm) unlockedClaimList() []Claim {
	out := make([]Claim, 0, len(f.claims))
	for _, c := range f.claims {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Claim) int {
		if c := strings.Compare(a.Network, b.Network); c != 0 {
			return c
		}
		return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name))
	})
	return out
}

// restoreClaims rebuilds the claims of a snapshot, dropping what the
// rules refuse or a second claim of one name.
func restoreClaims(list []Claim) map[claimKey]Claim {
	m := make(map[claimKey]Claim, len(list))
	for _, c := range list {
		cmd := command{Op: opClaim, Network: c.Network, Host: c.Host, Endpoint: c.Name, ID: c.ID}
		k := claimKeyOf(c.Network, c.Name)
		if _, dup := m[k]; dup || cmd.check() != nil {
			continue
		}
		m[k] = c
	}
	return m
}

func (f *fsm) claimed(network, name string) (Claim, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, ok := f.claims[claimKeyOf(network, name)]
	return c, ok
}

func (f *fsm) claimList() []Claim {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.unlockedClaimList()
}

// Claim commits this host's claim of name on network, for the attach id
// (not 0). It fails with a *config.NameHeldError naming the holder when
// another host holds the name, and with a *QuorumError (matching
// ErrNoQuorum) when nothing could be committed before ctx ends.
func (n *Node) Claim(ctx context.Context, network, name string, id uint64) error {
	r, err := n.propose(ctx, command{Op: opClaim, Network: network, Endpoint: name, Host: n.cfg.Name, ID: id})
	if err != nil && r.Holder != "" {
		return &config.NameHeldError{Held: config.NameHolder{Network: network, Name: r.HeldName, Host: r.Holder}}
	}
	return err
}

// Unclaim commits the release of this host's claim of name on network, if
// it is still the claim of attach id (0: whichever).
func (n *Node) Unclaim(ctx context.Context, network, name string, id uint64) error {
	_, err := n.propose(ctx, command{Op: opUnclaim, Network: network, Endpoint: name, Host: n.cfg.Name, ID: id})
	return err
}

// Claimed returns the claim of name on network, as applied here.
func (n *Node) Claimed(network, name string) (Claim, bool) { return n.fsm.claimed(network, name) }

// Claims returns every claim as applied here, sorted by network and name.
func (n *Node) Claims() []Claim { return n.fsm.claimList() }

// NewClaimID returns a fresh ID for a claim.
func NewClaimID() uint64 { return rand.Uint64() | 1 }
