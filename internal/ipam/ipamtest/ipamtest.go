// Package ipamtest provides in-memory fakes of ipam's Store and Claimer.
package ipamtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vxwire/vxwire/internal/ipam"
)

// Store is an in-memory ipam.Store. Set FailWrites to make Save and Delete
// fail. It is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	allocs map[ipam.Key]netip.Addr
	// FailWrites, when non-nil, is returned by Save and Delete.
	FailWrites error
}

var _ ipam.Store = (*Store)(nil)

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{allocs: make(map[ipam.Key]netip.Addr)} }

// Load implements ipam.Store.
func (s *Store) Load() (map[ipam.Key]netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[ipam.Key]netip.Addr, len(s.allocs))
	for k, v := range s.allocs {
		out[k] = v
	}
	return out, nil
}

// Save implements ipam.Store.
func (s *Store) Save(k ipam.Key, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailWrites != nil {
		return s.FailWrites
	}
	s.allocs[k] = ip
	return nil
}

// Delete implements ipam.Store.
func (s *Store) Delete(k ipam.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.FailWrites != nil {
		return s.FailWrites
	}
	delete(s.allocs, k)
	return nil
}

type addrKey struct {
	network string
	ip      netip.Addr
}

type holder struct {
	host, endpoint string
	// busy counts further claims by other hosts to refuse as transient.
	busy int
}

// Registry is an in-memory claim authority shared by the Claimers of
// several simulated hosts; it stands in for the gossip cluster. It is safe
// for concurrent use.
type Registry struct {
	mu   sync.Mutex
	held map[addrKey]*holder
	// Err, when non-nil, is returned by every Claim (an unreachable cluster).
	Err error
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{held: make(map[addrKey]*holder)} }

// Claimer returns the Claimer of host.
func (r *Registry) Claimer(host string) *Claimer { return &Claimer{r: r, host: host} }

// Hold records that endpoint on host holds ip of network.
func (r *Registry) Hold(network string, ip netip.Addr, endpoint, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held[addrKey{network, ip}] = &holder{host: host, endpoint: endpoint}
}

// Contend makes the next n claims of ip by other hosts fail as transient
// conflicts with a claim by endpoint on host in progress; then the address
// is free again.
func (r *Registry) Contend(network string, ip netip.Addr, endpoint, host string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held[addrKey{network, ip}] = &holder{host: host, endpoint: endpoint, busy: n}
}

// Claimer is one host's view of a Registry; it implements ipam.Claimer.
type Claimer struct {
	r    *Registry
	host string
}

var _ ipam.Claimer = (*Claimer)(nil)

// Claim implements ipam.Claimer.
func (c *Claimer) Claim(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	if c.r.Err != nil {
		return c.r.Err
	}
	k := addrKey{network, ip}
	if h, ok := c.r.held[k]; ok && h.host != c.host {
		if h.busy == 0 {
			return &Conflict{Endpoint: h.endpoint, Host: h.host}
		}
		h.busy--
		if h.busy == 0 {
			delete(c.r.held, k)
		}
		return &Conflict{Endpoint: h.endpoint, Host: h.host, Pending: true}
	}
	c.r.held[k] = &holder{host: c.host, endpoint: endpoint}
	return nil
}

// Unclaim implements ipam.Claimer.
func (c *Claimer) Unclaim(network string, ip netip.Addr, endpoint string) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	k := addrKey{network, ip}
	if h, ok := c.r.held[k]; ok && h.host == c.host && h.endpoint == endpoint {
		delete(c.r.held, k)
	}
}

// Lookup implements ipam.Claimer. Contended addresses are not reported.
func (c *Claimer) Lookup(network string, ip netip.Addr) (endpoint, host string, ok bool) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	h, ok := c.r.held[addrKey{network, ip}]
	if !ok || h.busy > 0 {
		return "", "", false
	}
	return h.endpoint, h.host, true
}

// Conflict is the error a Claimer returns for a held address; it
// implements ipam.ClaimConflict.
type Conflict struct {
	Endpoint, Host string
	Pending        bool
}

var _ ipam.ClaimConflict = (*Conflict)(nil)

// ErrUnreachable is a convenient value for Registry.Err.
var ErrUnreachable = errors.New("ipamtest: cluster unreachable")

// Error implements error.
func (e *Conflict) Error() string { return fmt.Sprintf("held by %s on %s", e.Endpoint, e.Host) }

// Holder implements ipam.ClaimConflict.
func (e *Conflict) Holder() (endpoint, host string) { return e.Endpoint, e.Host }

// Transient implements ipam.ClaimConflict.
func (e *Conflict) Transient() bool { return e.Pending }
