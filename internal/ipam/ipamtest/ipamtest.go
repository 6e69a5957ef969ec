// Package ipamtest provides in-memory fakes of ipam's Store, Blocks and
// Records.
package ipamtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/ipv4"
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

// Registry is an in-memory stand-in for the replicated block log, shared
// by the Blocks of several simulated hosts. It decides like the real log:
// the first free block to whoever asks, pins refused inside another host's
// block or over another holder's pin. It is safe for concurrent use.
type Registry struct {
	mu     sync.Mutex
	blocks []consensus.Block
	pins   map[addrKey]consensus.Pin
	// Cut, when it names a host, makes that host's Take, Pin and Unpin
	// fail as if it had no quorum (a partition).
	Cut map[string]bool
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{pins: make(map[addrKey]consensus.Pin), Cut: make(map[string]bool)}
}

// Blocks returns host's view of the registry.
func (r *Registry) Blocks(host string) *Blocks { return &Blocks{r: r, host: host} }

// SetCut cuts host off (true) or heals it (false).
func (r *Registry) SetCut(host string, cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Cut[host] = cut
}

// Blocks is one host's view of a Registry; it implements ipam.Blocks.
type Blocks struct {
	r    *Registry
	host string
}

var _ ipam.Blocks = (*Blocks)(nil)

func (b *Blocks) unlockedCut() error {
	if b.r.Cut[b.host] {
		return &consensus.QuorumError{Up: 1, All: 2}
	}
	return nil
}

// Take implements ipam.Blocks.
func (b *Blocks) Take(ctx context.Context, network string, subnet netip.Prefix, bits int) (netip.Prefix, error) {
	if err := ctx.Err(); err != nil {
		return netip.Prefix{}, err
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if err := b.unlockedCut(); err != nil {
		return netip.Prefix{}, err
	}
	p := netip.PrefixFrom(subnet.Addr(), bits)
	for subnet.Contains(p.Addr()) {
		free := true
		for _, o := range b.r.blocks {
			if o.Network == network && o.Prefix.Overlaps(p) {
				free = false
			}
		}
		if free {
			b.r.blocks = append(b.r.blocks, consensus.Block{Network: network, Prefix: p, Host: b.host})
			return p, nil
		}
		next := ipv4.Broadcast(p).Next()
		if !next.IsValid() {
			break
		}
		p = netip.PrefixFrom(next, bits)
	}
	return netip.Prefix{}, &consensus.RefusedError{Msg: "no free block", Exhausted: true}
}

// Held implements ipam.Blocks.
func (b *Blocks) Held(network string, subnet netip.Prefix) []netip.Prefix {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	var out []netip.Prefix
	for _, o := range b.r.blocks {
		if o.Network == network && o.Host == b.host && subnet.Contains(o.Prefix.Addr()) {
			out = append(out, o.Prefix)
		}
	}
	return out
}

// Owner implements ipam.Blocks.
func (b *Blocks) Owner(network string, ip netip.Addr) (consensus.Block, bool) {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	for _, o := range b.r.blocks {
		if o.Network == network && o.Prefix.Contains(ip) {
			return o, true
		}
	}
	return consensus.Block{}, false
}

// Pinned implements ipam.Blocks.
func (b *Blocks) Pinned(network string, ip netip.Addr) (consensus.Pin, bool) {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	p, ok := b.r.pins[addrKey{network, ip}]
	return p, ok
}

// Pin implements ipam.Blocks.
func (b *Blocks) Pin(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if err := b.unlockedCut(); err != nil {
		return err
	}
	for _, o := range b.r.blocks {
		if o.Network == network && o.Prefix.Contains(ip) && o.Host != b.host {
			return &consensus.RefusedError{Msg: fmt.Sprintf("%s lies in block %s of %s", ip, o.Prefix, o.Host)}
		}
	}
	k := addrKey{network, ip}
	if p, ok := b.r.pins[k]; ok && (p.Host != b.host || p.Endpoint != endpoint) {
		return &consensus.RefusedError{Msg: fmt.Sprintf("%s is in use by %s on %s", ip, p.Endpoint, p.Host)}
	}
	b.r.pins[k] = consensus.Pin{Network: network, IP: ip, Host: b.host, Endpoint: endpoint}
	return nil
}

// Unpin implements ipam.Blocks.
func (b *Blocks) Unpin(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if err := b.unlockedCut(); err != nil {
		return err
	}
	k := addrKey{network, ip}
	if p, ok := b.r.pins[k]; ok && p.Host == b.host && p.Endpoint == endpoint {
		delete(b.r.pins, k)
	}
	return nil
}

// Records is an in-memory ipam.Records: endpoint records as gossip would
// carry them. It is safe for concurrent use.
type Records struct {
	mu   sync.Mutex
	recs map[addrKey][2]string
}

var _ ipam.Records = (*Records)(nil)

// NewRecords returns an empty Records.
func NewRecords() *Records { return &Records{recs: make(map[addrKey][2]string)} }

// Hold records that endpoint on host holds ip of network.
func (r *Records) Hold(network string, ip netip.Addr, endpoint, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[addrKey{network, ip}] = [2]string{endpoint, host}
}

// Lookup implements ipam.Records.
func (r *Records) Lookup(network string, ip netip.Addr) (endpoint, host string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.recs[addrKey{network, ip}]
	return h[0], h[1], ok
}

// ErrUnreachable is a convenient error for tests of failing stores.
var ErrUnreachable = errors.New("ipamtest: unreachable")
