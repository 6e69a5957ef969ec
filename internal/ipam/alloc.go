package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/internal/safe"
)

// ErrExhausted is returned (wrapped) when a subnet has no free address for
// this host: its blocks are full and no block of the subnet is free.
var ErrExhausted = errors.New("ipam: no free address")

// ErrNoQuorum is returned (wrapped) when an allocation needs a new block
// and too few hosts are reachable to take one.
var ErrNoQuorum = consensus.ErrNoQuorum

// ErrBusy is returned (wrapped) when another allocation for the same
// endpoint is in progress.
var ErrBusy = errors.New("ipam: allocation in progress")

// Blocks is the overlay's replicated record of address blocks and pinned
// addresses (consensus.Node implements it; Local stands in on a host
// without voting peers). The reads return what this host has applied.
// Implementations must be safe for concurrent use.
type Blocks interface {
	// Take takes a free block of subnet, bits long, for this host. It
	// fails with an error matching ErrNoQuorum when too few hosts are
	// reachable before ctx ends, and one matching consensus.ErrExhausted
	// when every block is held.
	Take(ctx context.Context, network string, subnet netip.Prefix, bits int) (netip.Prefix, error)
	// Held returns this host's blocks of network inside subnet, in
	// address order.
	Held(network string, subnet netip.Prefix) []netip.Prefix
	// Owner returns the block of network that holds ip, if any.
	Owner(network string, ip netip.Addr) (consensus.Block, bool)
	// Pinned returns who pinned ip of network, if anyone.
	Pinned(network string, ip netip.Addr) (consensus.Pin, bool)
	// Pin records that endpoint of this host holds ip, outside its
	// blocks; a refusal satisfies consensus.IsRefused.
	Pin(ctx context.Context, network string, ip netip.Addr, endpoint string) error
	// Unpin drops such a record.
	Unpin(ctx context.Context, network string, ip netip.Addr, endpoint string) error
}

// Records tells who holds an address according to the endpoint records
// the overlay replicates (gossip.Cluster implements it).
type Records interface {
	// Lookup returns the endpoint and host holding ip of network.
	Lookup(network string, ip netip.Addr) (endpoint, host string, ok bool)
}

// ConflictError reports an address held by another endpoint or host.
type ConflictError struct {
	// Network and IP name the address asked for.
	Network string
	IP      netip.Addr
	// Endpoint and Host name the holder; Endpoint is empty when the
	// address lies in Block, a block of Host.
	Endpoint string
	Host     string
	Block    netip.Prefix
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *ConflictError) Error() string {
	if e.Host == "" && e.Err != nil {
		// The holder is known only to the log that refused (a host
		// outside it reads its own blocks and pins alone).
		return e.Err.Error()
	}
	if e.Endpoint == "" {
		return fmt.Sprintf("address %s of network %s lies in address block %s of host %s", e.IP, e.Network, e.Block, e.Host)
	}
	return fmt.Sprintf("address %s of network %s is in use by %s on %s", e.IP, e.Network, e.Endpoint, e.Host)
}

// Unwrap returns the underlying error.
func (e *ConflictError) Unwrap() error { return e.Err }

// Holder returns the endpoint (empty for a block) and host holding the
// address.
func (e *ConflictError) Holder() (endpoint, host string) { return e.Endpoint, e.Host }

// Timeouts of pins: how long an explicit address waits for the log before
// it is honoured anyway (and pinned in the background), and the bound of
// one background attempt.
const (
	pinWait      = 2 * time.Second
	pinAttempt   = 10 * time.Second
	pinRetryWait = time.Second
)

// leaderKnower is implemented by Blocks that can tell whether a command
// may commit soon (consensus.Node): without a leader an explicit address
// is honoured at once instead of after pinWait.
type leaderKnower interface{ HasLeader() bool }

// BlockBits returns the prefix length of the blocks of subnet: /28 (16
// addresses), or smaller blocks so that a small subnet still has four, or
// larger ones so that a huge subnet has at most 2^20.
func BlockBits(subnet netip.Prefix) int {
	return min(max(subnet.Bits(), min(max(subnet.Bits()+2, 28), 30)), subnet.Bits()+20)
}

// Allocator hands out overlay-wide unique addresses for this host's
// endpoints and persists them. Dynamic addresses come from this host's
// blocks, which it takes through Blocks when it needs one; explicit
// addresses outside its blocks are pinned in the log. Methods are safe for
// concurrent use.
type Allocator struct {
	store   Store
	host    string
	blocks  Blocks
	records Records // nil: no records to check
	l       *slog.Logger
	crash   safe.Reporter

	mu     sync.Mutex
	allocs map[Key]netip.Addr
	used   map[netKey]Key // allocs indexed by address
	busy   map[Key]bool   // keys with an Allocate in progress

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// RecoveredPin is the kind under which NewAllocator's crash counts panics
// of a background pin or unpin.
const RecoveredPin = "ipam pin"

// NewAllocator returns an allocator for host's endpoints, loading the
// allocations persisted in store. records may be nil. Background pins and
// unpins recover their panics into crash (counted as RecoveredPin): a pin
// that failed this way is retried by the next Restore.
func NewAllocator(store Store, host string, blocks Blocks, records Records, l *slog.Logger, crash safe.Reporter) (*Allocator, error) {
	allocs, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("ipam: cannot load allocations: %w", err)
	}
	a := &Allocator{
		store: store, host: host, blocks: blocks, records: records, l: l, crash: crash,
		allocs: allocs,
		used:   make(map[netKey]Key, len(allocs)),
		busy:   make(map[Key]bool),
		done:   make(chan struct{}),
	}
	for k, ip := range allocs {
		a.used[netKey{k.Network, ip}] = k
	}
	return a, nil
}

// Restore pins again, in the background, every persisted allocation that
// lies outside this host's blocks, so that the log learns of addresses
// this host kept while it was unreachable. An allocation another host now
// holds is left alone: Allocate reports it as a conflict.
func (a *Allocator) Restore() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, ip := range a.allocs {
		if b, ok := a.blocks.Owner(k.Network, ip); ok && b.Host == a.host {
			continue
		}
		if a.unlockedConflict(k, ip) == nil {
			a.pinLater(k, ip)
		}
	}
}

// Close stops the background pins.
func (a *Allocator) Close() {
	a.closeOnce.Do(func() { close(a.done) })
	a.wg.Wait()
}

// Allocate returns the address of endpoint on network, allocating one in
// subnet if it has none. want, when valid, asks for that address; it is
// granted or refused with a *ConflictError naming the holder. The network
// and broadcast addresses of subnet and gateway are never given. A
// successful allocation is persisted before Allocate returns.
//
// An address the endpoint already has is checked against the log again:
// after a partition or a restart it may have been given to another host,
// and then Allocate fails with a *ConflictError.
func (a *Allocator) Allocate(ctx context.Context, network string, subnet netip.Prefix, gateway netip.Addr, endpoint string, want netip.Addr) (netip.Addr, error) {
	if err := checkRequest(network, subnet, gateway, endpoint, want); err != nil {
		return netip.Addr{}, err
	}
	k := Key{network, endpoint}
	a.mu.Lock()
	if a.busy[k] {
		a.mu.Unlock()
		return netip.Addr{}, fmt.Errorf("endpoint %s of network %s: %w", endpoint, network, ErrBusy)
	}
	a.busy[k] = true
	have, ok := a.allocs[k]
	var conflict error
	if ok {
		conflict = a.unlockedConflict(k, have)
	}
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.busy, k)
		a.mu.Unlock()
	}()
	switch {
	case ok && want.IsValid() && want != have:
		return netip.Addr{}, fmt.Errorf("ipam: endpoint %s of network %s already has address %s", endpoint, network, have)
	case ok && !subnet.Contains(have):
		return netip.Addr{}, fmt.Errorf("ipam: address %s of endpoint %s is outside subnet %s of network %s", have, endpoint, subnet, network)
	case ok:
		return have, conflict
	case want.IsValid():
		return a.allocateWant(ctx, k, want)
	}
	return a.allocateAny(ctx, k, subnet, gateway)
}

func checkRequest(network string, subnet netip.Prefix, gateway netip.Addr, endpoint string, want netip.Addr) error {
	switch {
	case network == "" || endpoint == "":
		return errors.New("ipam: network and endpoint are required")
	case !subnet.IsValid() || subnet.Masked() != subnet:
		return fmt.Errorf("ipam: subnet %s of network %s is not a network prefix", subnet, network)
	case !subnet.Addr().Is4():
		return fmt.Errorf("ipam: subnet %s of network %s is not IPv4", subnet, network)
	case subnet.Addr().BitLen()-subnet.Bits() < 2:
		return fmt.Errorf("ipam: subnet %s of network %s is too small", subnet, network)
	case gateway.IsValid() && !subnet.Contains(gateway):
		return fmt.Errorf("ipam: gateway %s is outside subnet %s of network %s", gateway, subnet, network)
	case !want.IsValid():
		return nil
	case !subnet.Contains(want):
		return fmt.Errorf("ipam: address %s is outside subnet %s of network %s", want, subnet, network)
	case want == gateway:
		return fmt.Errorf("ipam: address %s is the gateway of network %s", want, network)
	case want == subnet.Addr():
		return fmt.Errorf("ipam: address %s is the network address of %s", want, network)
	case want == ipv4.Broadcast(subnet):
		return fmt.Errorf("ipam: address %s is the broadcast address of %s", want, network)
	}
	return nil
}

// unlockedConflict returns a *ConflictError if anyone but k holds ip: a
// local allocation, another host's block or pin, or another holder's
// record. mu must be held.
func (a *Allocator) unlockedConflict(k Key, ip netip.Addr) error {
	if o, ok := a.used[netKey{k.Network, ip}]; ok && o != k {
		return &ConflictError{Network: k.Network, IP: ip, Endpoint: o.Endpoint, Host: a.host}
	}
	if b, ok := a.blocks.Owner(k.Network, ip); ok && b.Host != a.host {
		return &ConflictError{Network: k.Network, IP: ip, Host: b.Host, Block: b.Prefix}
	}
	// A pin of this host's is this host's to hand on: which of its
	// endpoints holds the address, a.used says.
	if p, ok := a.blocks.Pinned(k.Network, ip); ok && p.Host != a.host {
		return &ConflictError{Network: k.Network, IP: ip, Endpoint: p.Endpoint, Host: p.Host}
	}
	if a.records != nil {
		if ep, host, ok := a.records.Lookup(k.Network, ip); ok && (host != a.host || ep != k.Endpoint) {
			return &ConflictError{Network: k.Network, IP: ip, Endpoint: ep, Host: host}
		}
	}
	return nil
}

// allocateWant grants exactly ip to k. Inside this host's blocks that is
// a local decision. Elsewhere the address is pinned in the log: a refusal
// (another host's block or pin) fails the allocation, while a log that
// cannot commit in pinWait (a host whose peers are not up yet) does not:
// the address is honoured and pinned in the background.
func (a *Allocator) allocateWant(ctx context.Context, k Key, ip netip.Addr) (netip.Addr, error) {
	a.mu.Lock()
	if err := a.unlockedConflict(k, ip); err != nil {
		a.mu.Unlock()
		return netip.Addr{}, err
	}
	b, own := a.blocks.Owner(k.Network, ip)
	own = own && b.Host == a.host
	if err := a.unlockedCommit(k, ip); err != nil {
		a.mu.Unlock()
		return netip.Addr{}, err
	}
	a.mu.Unlock()
	if own {
		return ip, nil
	}
	err := errors.New("no leader")
	if l, ok := a.blocks.(leaderKnower); !ok || l.HasLeader() {
		pctx, cancel := context.WithTimeout(ctx, pinWait)
		err = a.blocks.Pin(pctx, k.Network, ip, k.Endpoint)
		cancel()
	}
	switch {
	case err == nil:
		return ip, nil
	case consensus.IsRefused(err):
		a.forget(k, ip)
		c := &ConflictError{Network: k.Network, IP: ip, Err: err}
		if p, ok := a.blocks.Pinned(k.Network, ip); ok {
			c.Endpoint, c.Host = p.Endpoint, p.Host
		} else if b, ok := a.blocks.Owner(k.Network, ip); ok {
			c.Host, c.Block = b.Host, b.Prefix
		}
		return netip.Addr{}, c
	}
	a.l.Warn("explicit address honoured before the overlay could record it", "network", k.Network, "endpoint", k.Endpoint, "ip", ip.String(), "error", err)
	a.mu.Lock()
	a.pinLater(k, ip)
	a.mu.Unlock()
	return ip, nil
}

// allocateAny gives k the first free address of this host's blocks,
// taking a new block when they are full.
func (a *Allocator) allocateAny(ctx context.Context, k Key, subnet netip.Prefix, gateway netip.Addr) (netip.Addr, error) {
	// taken are the blocks this call took: the log may not have reached
	// this host's replica yet when Take returns.
	var taken []netip.Prefix
	for {
		a.mu.Lock()
		for _, b := range append(a.blocks.Held(k.Network, subnet), taken...) {
			for ip := b.Addr(); ip.IsValid() && b.Contains(ip); ip = ip.Next() {
				// An address of a local endpoint is skipped with one map
				// look-up: on a full host nearly every address is one.
				if _, local := a.used[netKey{k.Network, ip}]; local {
					continue
				}
				if !usable(subnet, gateway, ip) || a.unlockedConflict(k, ip) != nil {
					continue
				}
				err := a.unlockedCommit(k, ip)
				a.mu.Unlock()
				return ip, err
			}
		}
		a.mu.Unlock()
		b, err := a.blocks.Take(ctx, k.Network, subnet, BlockBits(subnet))
		taken = append(taken, b)
		var qe *consensus.QuorumError
		switch {
		case errors.As(err, &qe):
			return netip.Addr{}, fmt.Errorf("ipam: network %s: no quorum: cannot take a new address block; %d of %d hosts reachable: %w",
				k.Network, qe.Up, qe.All, ErrNoQuorum)
		case errors.Is(err, consensus.ErrExhausted):
			return netip.Addr{}, fmt.Errorf("ipam: subnet %s of network %s: %w", subnet, k.Network, ErrExhausted)
		case err != nil:
			return netip.Addr{}, fmt.Errorf("ipam: network %s: cannot take a new address block: %w", k.Network, err)
		}
	}
}

// usable reports whether ip may be given to an endpoint of subnet.
func usable(subnet netip.Prefix, gateway, ip netip.Addr) bool {
	return subnet.Contains(ip) && ip != subnet.Addr() && ip != ipv4.Broadcast(subnet) && ip != gateway
}

// unlockedCommit persists an allocation. mu must be held.
func (a *Allocator) unlockedCommit(k Key, ip netip.Addr) error {
	if err := a.store.Save(k, ip); err != nil {
		return fmt.Errorf("ipam: cannot persist %s for endpoint %s of network %s: %w", ip, k.Endpoint, k.Network, err)
	}
	a.allocs[k] = ip
	a.used[netKey{k.Network, ip}] = k
	a.l.Debug("address allocated", "network", k.Network, "endpoint", k.Endpoint, "ip", ip.String())
	return nil
}

// forget undoes an allocation the log refused.
func (a *Allocator) forget(k Key, ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.allocs[k] != ip {
		return
	}
	if err := a.store.Delete(k); err != nil {
		a.l.Error("cannot forget a refused address", "network", k.Network, "endpoint", k.Endpoint, "error", err)
		return
	}
	delete(a.allocs, k)
	delete(a.used, netKey{k.Network, ip})
}

// pinLater pins ip for k in the background until the log records or
// refuses it, or k lets the address go. A refusal is logged: the overlay
// gave the address to another host while this one could not reach it.
// mu must be held.
func (a *Allocator) pinLater(k Key, ip netip.Addr) {
	a.wg.Add(1)
	go func() {
		defer a.crash.Recover(RecoveredPin, nil)
		defer a.wg.Done()
		for {
			a.mu.Lock()
			still := a.allocs[k] == ip
			a.mu.Unlock()
			if !still {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), pinAttempt)
			go func() {
				select {
				case <-a.done:
				case <-ctx.Done():
				}
				cancel()
			}()
			err := a.blocks.Pin(ctx, k.Network, ip, k.Endpoint)
			cancel()
			switch {
			case err == nil:
				return
			case consensus.IsRefused(err):
				a.l.Error("an address kept without the overlay is held by another host", "network", k.Network, "endpoint", k.Endpoint, "ip", ip.String(), "error", err)
				return
			}
			select {
			case <-a.done:
				return
			case <-time.After(pinRetryWait):
			}
		}
	}()
}

// Release frees the address of endpoint on network. Releasing an endpoint
// without an address is not an error. A pin of the address is dropped in
// the background.
func (a *Allocator) Release(network, endpoint string) error {
	k := Key{network, endpoint}
	a.mu.Lock()
	defer a.mu.Unlock()
	ip, ok := a.allocs[k]
	if !ok {
		return nil
	}
	if err := a.store.Delete(k); err != nil {
		return fmt.Errorf("ipam: cannot release %s of network %s: %w", ip, network, err)
	}
	delete(a.allocs, k)
	delete(a.used, netKey{network, ip})
	if p, ok := a.blocks.Pinned(network, ip); ok && p.Host == a.host && p.Endpoint == endpoint {
		a.wg.Add(1)
		go func() {
			defer a.crash.Recover(RecoveredPin, nil)
			defer a.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), pinAttempt)
			defer cancel()
			go func() {
				select {
				case <-a.done:
				case <-ctx.Done():
				}
				cancel()
			}()
			if err := a.blocks.Unpin(ctx, network, ip, endpoint); err != nil {
				a.l.Debug("cannot drop a pinned address", "network", network, "ip", ip.String(), "error", err)
			}
		}()
	}
	return nil
}

// Address returns the address allocated to endpoint on network, if any.
func (a *Allocator) Address(network, endpoint string) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ip, ok := a.allocs[Key{network, endpoint}]
	return ip, ok
}
