package consensus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/vxwire/vxwire/internal/config"
)

// Networks created through the API live in the same log as the address
// blocks: a definition is one entry, its removal another. The state
// machine refuses a definition whose name, VNI or subnet another network
// of the log already uses, so of two hosts racing to create clashing
// networks exactly one wins, on every host alike.

// Operations on network definitions.
const (
	opNetCreate = "net-create"
	opNetRemove = "net-remove"
)

// ErrNetworkConflict is returned (wrapped, as *RefusedError) by
// CreateNetwork when a network of the log already uses the name, the VNI
// or an overlapping subnet.
var ErrNetworkConflict = errors.New("network conflict")

// ErrUnknownNetwork is returned (wrapped, as *RefusedError) by
// RemoveNetwork when the log holds no network of that name.
var ErrUnknownNetwork = errors.New("unknown network")

// Network is a network definition held by the log.
type Network struct {
	// Def is the definition, valid by config.CheckNetwork.
	Def config.Network `json:"def"`
	// Host is the host that created it.
	Host string `json:"host"`
	// ID identifies the create command, so that a retry of a create that
	// was committed is not refused as a clash with itself.
	ID uint64 `json:"id,omitempty"`
}

// maxAmong bounds the hosts a network removal names.
const maxAmong = 4096

// checkNet validates the network part of a command with the config rules.
func (c *command) checkNet() error {
	if c.Op == opNetRemove {
		if c.Net != nil {
			return errors.New("network removal carries a definition")
		}
		if len(c.Among) > maxAmong {
			return fmt.Errorf("a network removal names at most %d hosts", maxAmong)
		}
		for _, h := range c.Among {
			if err := config.CheckHostName(h); err != nil {
				return fmt.Errorf("among: %w", err)
			}
		}
		return nil
	}
	if c.Net == nil || c.Net.Name != c.Network {
		return errors.New("network create needs the definition of the network it names")
	}
	return config.CheckNetwork(c.Net)
}

// unlockedCreateNet adds c's network unless it clashes with one of the log.
func (f *fsm) unlockedCreateNet(c command) result {
	d := *c.Net
	for _, o := range f.nets {
		if o.Def.Name == d.Name && o.Host == c.Host && o.ID == c.ID && c.ID != 0 {
			return result{} // a retry of a committed create
		}
		if err := config.NetworkClash(&d, &o.Def); err != nil {
			return result{Err: fmt.Sprintf("%v (created on %s)", err, o.Host), Conflict: true}
		}
	}
	n := Network{Def: d, Host: c.Host, ID: c.ID}
	i, _ := slices.BinarySearchFunc(f.nets, n, compareNets)
	f.nets = slices.Insert(f.nets, i, n)
	f.signal()
	return result{}
}

// unlockedRemoveNet drops the network c names.
func (f *fsm) unlockedRemoveNet(c command) result {
	i := slices.IndexFunc(f.nets, func(n Network) bool { return n.Def.Name == c.Network })
	if i < 0 {
		return result{Err: fmt.Sprintf("network %q is not in the log", c.Network), Unknown: true}
	}
	if held := f.unlockedHeldBy(c.Network, c.Among, c.Host); len(held) > 0 {
		return result{Err: fmt.Sprintf("network %q has endpoints attached on other hosts: %v; detach them first", c.Network, held), Conflict: true}
	}
	f.nets = slices.Delete(f.nets, i, i+1)
	// The network's names go with it.
	f.unlockedDropClaims(c.Network)
	f.unlockedDropVIPs(c.Network)
	f.signal()
	return result{}
}

// unlockedHeldBy returns the endpoint names ("host/name", sorted) that
// the hosts among, other than self, hold on network.
func (f *fsm) unlockedHeldBy(network string, among []string, self string) []string {
	var held []string
	for _, c := range f.claims {
		if c.Network == network && c.Host != self && slices.Contains(among, c.Host) {
			held = append(held, c.Host+"/"+c.Name)
		}
	}
	slices.Sort(held)
	return held
}

// signal tells a watcher of NetworkChanges that the networks changed.
func (f *fsm) signal() {
	if f.changed == nil {
		return
	}
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func compareNets(a, b Network) int { return strings.Compare(a.Def.Name, b.Def.Name) }

// networks returns the log's networks, sorted by name.
func (f *fsm) networks() []Network {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.nets)
}

// CreateNetwork commits the definition def, created by this host, to the
// log. It fails with an error matching ErrNetworkConflict when a network
// of the log uses its name, VNI or an overlapping subnet, and with a
// *QuorumError (matching ErrNoQuorum) when nothing could be committed
// before ctx ends. On success this host's replica holds the network (or
// ctx ended while waiting for it).
func (n *Node) CreateNetwork(ctx context.Context, def config.Network) error {
	return n.commit(ctx, command{Op: opNetCreate, Network: def.Name, Host: n.cfg.Name, Net: &def, ID: rand.Uint64() | 1})
}

// RemoveNetwork commits the removal of network name to the log. It fails
// with an error matching ErrUnknownNetwork when the log has no such
// network, with one matching ErrNetworkConflict when one of the hosts
// among (other than this one) holds an endpoint name on it, and like
// CreateNetwork without a quorum.
func (n *Node) RemoveNetwork(ctx context.Context, name string, among []string) error {
	return n.commit(ctx, command{Op: opNetRemove, Network: name, Host: n.cfg.Name, Among: among})
}

// Networks returns the networks of the log as applied here, sorted by
// name. The state is durable: a restarted host knows them at once.
func (n *Node) Networks() []Network { return n.fsm.networks() }

// NetworkChanges returns a channel that receives a value, coalesced, after
// the log's networks changed here.
func (n *Node) NetworkChanges() <-chan struct{} { return n.fsm.changed }

// commit proposes c like propose and then waits until this host's replica
// has applied it, so that the caller reads its own change.
func (n *Node) commit(ctx context.Context, c command) error {
	r, err := n.propose(ctx, c)
	if err != nil {
		return err
	}
	n.waitApplied(ctx, r.Index)
	return nil
}

// waitApplied waits until this host's replica has applied entry index, or
// ctx ends: an answer forwarded from the leader can come before this
// host's replica learns that the entry is committed.
func (n *Node) waitApplied(ctx context.Context, index uint64) {
	for n.fsm.appliedIndex() < index {
		select {
		case <-ctx.Done():
			return
		case <-n.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
