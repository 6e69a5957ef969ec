package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vxwire/vxwire/internal/config"
)

// Ports published through the API live in the log like API networks: an
// add or a removal is one entry. The state machine refuses a publish that
// clashes (config.PublishClash) with one of the log, so of two hosts
// racing to publish one port exactly one wins, on every host alike.

// Operations on published ports.
const (
	opPubAdd    = "pub-add"
	opPubRemove = "pub-remove"
)

// ErrPublishConflict is returned (wrapped, as *RefusedError) by
// AddPublish when a publish of the log binds the same protocol and port.
var ErrPublishConflict = errors.New("publish conflict")

// ErrUnknownPublish is returned (wrapped, as *RefusedError) by
// RemovePublish when the log holds no such publish.
var ErrUnknownPublish = errors.New("unknown publish")

// Publish is a published port held by the log.
type Publish struct {
	// Def is the publish, valid by config.CheckPublish.
	Def config.Publish `json:"def"`
	// Host is the host that added it.
	Host string `json:"host"`
}

// checkPub validates the publish part of a command with the config rules.
func (c *command) checkPub() error {
	if c.Pub == nil || c.Pub.Network != c.Network || c.Net != nil {
		return errors.New("a publish command needs the publish of the network it names")
	}
	if c.Op == opPubRemove {
		return nil
	}
	return config.CheckPublish(c.Pub)
}

// samePub reports whether a and b bind the same protocol, port and
// listen address.
func samePub(a, b *config.Publish) bool {
	return a.Proto == b.Proto && a.Port == b.Port && a.Listen == b.Listen
}

func (f *fsm) unlockedAddPub(c command) result {
	for _, o := range f.pubs {
		if o.Def == *c.Pub && o.Host == c.Host {
			return result{} // a retry of a committed add
		}
		if err := config.PublishClash(c.Pub, &o.Def); err != nil {
			return result{Err: fmt.Sprintf("%v (added on %s)", err, o.Host), Conflict: true}
		}
	}
	f.pubs = append(f.pubs, Publish{Def: *c.Pub, Host: c.Host})
	slices.SortFunc(f.pubs, comparePubs)
	f.signal()
	return result{}
}

func (f *fsm) unlockedRemovePub(c command) result {
	i := slices.IndexFunc(f.pubs, func(p Publish) bool { return samePub(&p.Def, c.Pub) })
	if i < 0 {
		return result{Err: fmt.Sprintf("%s is not published in the log", c.Pub.Key()), Unknown: true}
	}
	f.pubs = slices.Delete(f.pubs, i, i+1)
	f.signal()
	return result{}
}

func comparePubs(a, b Publish) int {
	switch {
	case a.Def.Proto != b.Def.Proto:
		if a.Def.Proto < b.Def.Proto {
			return -1
		}
		return 1
	case a.Def.Port != b.Def.Port:
		return int(a.Def.Port) - int(b.Def.Port)
	}
	return a.Def.Listen.Compare(b.Def.Listen)
}

// publishes returns the log's publishes, sorted.
func (f *fsm) publishes() []Publish {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.pubs)
}

// validPubs keeps the publishes the config rules accept, once each.
func validPubs(in []Publish) []Publish {
	out := make([]Publish, 0, len(in))
	for _, p := range in {
		if config.CheckPublish(&p.Def) == nil && !slices.ContainsFunc(out, func(o Publish) bool { return config.PublishClash(&p.Def, &o.Def) != nil }) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePubs)
	return out
}

// AddPublish commits publish p, added on this host, to the log. It fails
// with an error matching ErrPublishConflict when a publish of the log
// binds the same protocol and port, and like CreateNetwork without a
// quorum.
func (n *Node) AddPublish(ctx context.Context, p config.Publish) error {
	return n.commit(ctx, command{Op: opPubAdd, Network: p.Network, Host: n.cfg.Name, Pub: &p})
}

// RemovePublish commits the removal of the publish binding p's protocol,
// port and listen address. It fails with an error matching
// ErrUnknownPublish when the log has none.
func (n *Node) RemovePublish(ctx context.Context, p config.Publish) error {
	return n.commit(ctx, command{Op: opPubRemove, Network: p.Network, Host: n.cfg.Name, Pub: &p})
}

// Publishes returns the publishes of the log as applied here. Changes
// are signalled on NetworkChanges.
func (n *Node) Publishes() []Publish { return n.fsm.publishes() }
