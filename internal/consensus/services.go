package consensus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/config"
)

// Services declared through the API live in the log like API networks:
// an add or a removal is one entry, and the state machine refuses a
// second service of one name in one network.

// Operations on services.
const (
	opSvcAdd    = "svc-add"
	opSvcRemove = "svc-remove"
)

// ErrServiceConflict is returned (wrapped, as *RefusedError) by
// AddService when the log holds a service of that name in that network.
var ErrServiceConflict = errors.New("service conflict")

// ErrUnknownService is returned (wrapped, as *RefusedError) by
// RemoveService when the log holds no such service.
var ErrUnknownService = errors.New("unknown service")

// Service is a service held by the log.
type Service struct {
	// Def is the service, valid by config.CheckService.
	Def config.Service `json:"def"`
	// Host is the host that added it.
	Host string `json:"host"`
}

// checkSvc validates the service part of a command with the config rules.
func (c *command) checkSvc() error {
	if c.Svc == nil || c.Svc.Network != c.Network || c.Net != nil || c.Pub != nil {
		return errors.New("a service command needs the service of the network it names")
	}
	return config.CheckService(c.Svc)
}

func (f *fsm) unlockedAddSvc(c command) result {
	for _, o := range f.svcs {
		if o.Def == *c.Svc && o.Host == c.Host {
			return result{} // a retry of a committed add
		}
		if err := config.ServiceClash(c.Svc, &o.Def); err != nil {
			return result{Err: fmt.Sprintf("%v (added on %s)", err, o.Host), Conflict: true}
		}
	}
	f.svcs = append(f.svcs, Service{Def: *c.Svc, Host: c.Host})
	slices.SortFunc(f.svcs, compareSvcs)
	f.signal()
	return result{}
}

func (f *fsm) unlockedRemoveSvc(c command) result {
	i := slices.IndexFunc(f.svcs, func(s Service) bool { return config.ServiceClash(&s.Def, c.Svc) != nil })
	if i < 0 {
		return result{Err: fmt.Sprintf("service %q of network %s is not in the log", c.Svc.Name, c.Svc.Network), Unknown: true}
	}
	f.svcs = slices.Delete(f.svcs, i, i+1)
	f.signal()
	return result{}
}

func compareSvcs(a, b Service) int {
	if c := strings.Compare(a.Def.Network, b.Def.Network); c != 0 {
		return c
	}
	return strings.Compare(a.Def.Name, b.Def.Name)
}

// services returns the log's services, sorted.
func (f *fsm) services() []Service {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.svcs)
}

// validSvcs keeps the services the config rules accept, once each.
func validSvcs(in []Service) []Service {
	out := make([]Service, 0, len(in))
	for _, s := range in {
		if config.CheckService(&s.Def) == nil && !slices.ContainsFunc(out, func(o Service) bool { return config.ServiceClash(&s.Def, &o.Def) != nil }) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, compareSvcs)
	return out
}

// AddService commits service s, added on this host, to the log. It fails
// with an error matching ErrServiceConflict when the log holds a service
// of that name in that network, and like CreateNetwork without a quorum.
func (n *Node) AddService(ctx context.Context, s config.Service) error {
	return n.commit(ctx, command{Op: opSvcAdd, Network: s.Network, Host: n.cfg.Name, Svc: &s})
}

// RemoveService commits the removal of the service of s's network and
// name. It fails with an error matching ErrUnknownService when the log
// has none.
func (n *Node) RemoveService(ctx context.Context, s config.Service) error {
	return n.commit(ctx, command{Op: opSvcRemove, Network: s.Network, Host: n.cfg.Name, Svc: &s})
}

// Services returns the services of the log as applied here. Changes are
// signalled on NetworkChanges.
func (n *Node) Services() []Service { return n.fsm.services() }
