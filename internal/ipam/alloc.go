package ipam

import (
	"context"
	"errors"
	"fmt"
	"github.com/vxwire/vxwire/internal/ipv4"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// ErrExhausted is returned (wrapped) when a subnet has no free address.
var ErrExhausted = errors.New("ipam: no free address")

// ErrBusy is returned (wrapped) when another allocation for the same
// endpoint is in progress.
var ErrBusy = errors.New("ipam: allocation in progress")

// Claimer reserves addresses across the overlay (gossip.Cluster implements
// it). Implementations must be safe for concurrent use.
type Claimer interface {
	// Claim reserves ip of network for endpoint of this host across the
	// overlay, or fails. When another endpoint holds the address the error
	// satisfies errors.As with a ClaimConflict. Claiming an address this
	// host already holds for endpoint succeeds.
	Claim(ctx context.Context, network string, ip netip.Addr, endpoint string) error
	// Unclaim gives up a reservation made by Claim.
	Unclaim(network string, ip netip.Addr, endpoint string)
	// Lookup returns who is known to hold ip of network, if anyone.
	Lookup(network string, ip netip.Addr) (endpoint, host string, ok bool)
}

// ClaimConflict is implemented by Claim errors that name the holder of the
// address. Transient reports a competing claim in progress rather than an
// established holder: retrying after a short delay may succeed.
type ClaimConflict interface {
	error
	Holder() (endpoint, host string)
	Transient() bool
}

// ConflictError reports an address held by another endpoint.
type ConflictError struct {
	// Network and IP name the address asked for.
	Network string
	IP      netip.Addr
	// Endpoint and Host name the holder.
	Endpoint string
	Host     string
	// Pending means the holder's claim was still in progress when this
	// allocation gave up.
	Pending bool
	// Err is the underlying claim error, if any.
	Err error
}

// Error implements error.
func (e *ConflictError) Error() string {
	verb := "is in use by"
	if e.Pending {
		verb = "is being claimed by"
	}
	return fmt.Sprintf("address %s of network %s %s %s on %s", e.IP, e.Network, verb, e.Endpoint, e.Host)
}

// Unwrap returns the underlying claim error.
func (e *ConflictError) Unwrap() error { return e.Err }

// Retry policy for claims refused because of a competing claim: jittered
// exponential backoff, bounded in attempts.
const (
	claimAttempts = 8
	backoffBase   = 20 * time.Millisecond
	backoffMax    = time.Second
	// maxScan bounds how many candidates one Allocate looks at, so that a
	// huge IPv6 subnet cannot make it run for ever.
	maxScan = 1 << 20
)

// Allocator hands out overlay-wide unique addresses for this host's
// endpoints and persists them. Methods are safe for concurrent use; claims
// run without the lock, so allocations for different endpoints proceed in
// parallel.
type Allocator struct {
	store Store
	host  string
	claim Claimer
	l     *slog.Logger

	mu       sync.Mutex
	allocs   map[Key]netip.Addr
	used     map[netKey]Key // allocs indexed by address
	inflight map[netKey]Key // candidates being claimed
	busy     map[Key]bool   // keys with an Allocate in progress
}

// NewAllocator returns an allocator for host's endpoints, loading the
// allocations persisted in store. Call Restore once the cluster is up to
// claim them again.
func NewAllocator(store Store, host string, claimer Claimer, l *slog.Logger) (*Allocator, error) {
	allocs, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("ipam: cannot load allocations: %w", err)
	}
	a := &Allocator{
		store:    store,
		host:     host,
		claim:    claimer,
		l:        l,
		allocs:   allocs,
		used:     make(map[netKey]Key, len(allocs)),
		inflight: make(map[netKey]Key),
		busy:     make(map[Key]bool),
	}
	for k, ip := range allocs {
		a.used[netKey{k.Network, ip}] = k
	}
	return a, nil
}

// Restore claims every persisted allocation again, so that the overlay
// knows them after a restart. Allocations another host took meanwhile are
// kept locally and reported in the joined error.
func (a *Allocator) Restore(ctx context.Context) error {
	a.mu.Lock()
	keys := make(map[Key]netip.Addr, len(a.allocs))
	for k, ip := range a.allocs {
		keys[k] = ip
	}
	a.mu.Unlock()
	var errs []error
	for k, ip := range keys {
		if err := a.claimRetry(ctx, k, ip); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Allocate returns the address of endpoint on network, allocating one in
// subnet if it has none. want, when valid, asks for that address; it is
// granted or refused with a *ConflictError naming the holder. The network
// and broadcast addresses of subnet and gateway are never given. A
// successful allocation is persisted before Allocate returns.
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
		// Known after a restart, or asked again: make sure the overlay
		// still agrees.
		if err := a.claimRetry(ctx, k, have); err != nil {
			return netip.Addr{}, err
		}
		return have, nil
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

// allocateWant claims exactly ip for k, retrying while a competing claim
// is in progress.
func (a *Allocator) allocateWant(ctx context.Context, k Key, ip netip.Addr) (netip.Addr, error) {
	if err := a.hold(k, ip); err != nil {
		return netip.Addr{}, err
	}
	if err := a.claimRetry(ctx, k, ip); err != nil {
		a.unhold(k, ip)
		return netip.Addr{}, err
	}
	return ip, a.commit(k, ip)
}

// allocateAny claims the first free address of subnet. A candidate that a
// competing claim holds is skipped at first and retried with backoff once
// the free ones have been tried, so two hosts racing for the last address
// do not both give up.
func (a *Allocator) allocateAny(ctx context.Context, k Key, subnet netip.Prefix, gateway netip.Addr) (netip.Addr, error) {
	var pending []netip.Addr
	try := func(ip netip.Addr) (bool, error) {
		if a.hold(k, ip) != nil {
			return false, nil
		}
		err := a.claim.Claim(ctx, k.Network, ip, k.Endpoint)
		if err == nil {
			return true, a.commit(k, ip)
		}
		a.unhold(k, ip)
		var cc ClaimConflict
		if !errors.As(err, &cc) {
			return false, fmt.Errorf("ipam: cannot claim %s of network %s: %w", ip, k.Network, err)
		}
		if cc.Transient() {
			pending = append(pending, ip)
		}
		return false, nil
	}
	last, n := ipv4.Broadcast(subnet), 0
	for ip := subnet.Addr().Next(); ip.IsValid() && subnet.Contains(ip) && n < maxScan; ip = ip.Next() {
		if ip == gateway || ip == last {
			continue
		}
		n++
		if ok, err := try(ip); ok || err != nil {
			return ip, err
		}
	}
	for attempt := 1; attempt < claimAttempts && len(pending) > 0; attempt++ {
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return netip.Addr{}, err
		}
		retry := pending
		pending = nil
		for _, ip := range retry {
			if ok, err := try(ip); ok || err != nil {
				return ip, err
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("ipam: subnet %s of network %s: %w", subnet, k.Network, ErrExhausted)
}

// hold reserves ip for k in this process, failing with a *ConflictError
// if a local allocation or any known record holds it.
func (a *Allocator) hold(k Key, ip netip.Addr) error {
	nk := netKey{k.Network, ip}
	a.mu.Lock()
	defer a.mu.Unlock()
	if o, ok := a.used[nk]; ok && o != k {
		return &ConflictError{Network: k.Network, IP: ip, Endpoint: o.Endpoint, Host: a.host}
	}
	if o, ok := a.inflight[nk]; ok && o != k {
		return &ConflictError{Network: k.Network, IP: ip, Endpoint: o.Endpoint, Host: a.host, Pending: true}
	}
	if ep, host, ok := a.claim.Lookup(k.Network, ip); ok && (host != a.host || ep != k.Endpoint) {
		return &ConflictError{Network: k.Network, IP: ip, Endpoint: ep, Host: host}
	}
	a.inflight[nk] = k
	return nil
}

func (a *Allocator) unhold(k Key, ip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[netKey{k.Network, ip}] == k {
		delete(a.inflight, netKey{k.Network, ip})
	}
}

// commit persists a claimed allocation; if that fails the claim is undone.
func (a *Allocator) commit(k Key, ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	nk := netKey{k.Network, ip}
	delete(a.inflight, nk)
	if err := a.store.Save(k, ip); err != nil {
		a.claim.Unclaim(k.Network, ip, k.Endpoint)
		return fmt.Errorf("ipam: cannot persist %s for endpoint %s of network %s: %w", ip, k.Endpoint, k.Network, err)
	}
	a.allocs[k] = ip
	a.used[nk] = k
	a.l.Debug("address allocated", "network", k.Network, "endpoint", k.Endpoint, "ip", ip.String())
	return nil
}

// claimRetry claims ip for k, retrying with backoff while the refusal is
// transient. A final refusal becomes a *ConflictError.
func (a *Allocator) claimRetry(ctx context.Context, k Key, ip netip.Addr) error {
	for attempt := 1; ; attempt++ {
		err := a.claim.Claim(ctx, k.Network, ip, k.Endpoint)
		if err == nil {
			return nil
		}
		var cc ClaimConflict
		if !errors.As(err, &cc) {
			return fmt.Errorf("ipam: cannot claim %s of network %s: %w", ip, k.Network, err)
		}
		if !cc.Transient() || attempt >= claimAttempts {
			ep, host := cc.Holder()
			return &ConflictError{Network: k.Network, IP: ip, Endpoint: ep, Host: host, Pending: cc.Transient(), Err: err}
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return err
		}
	}
}

// Release frees the address of endpoint on network. Releasing an endpoint
// without an address is not an error.
func (a *Allocator) Release(network, endpoint string) error {
	k := Key{network, endpoint}
	a.mu.Lock()
	ip, ok := a.allocs[k]
	if !ok {
		a.mu.Unlock()
		return nil
	}
	if err := a.store.Delete(k); err != nil {
		a.mu.Unlock()
		return fmt.Errorf("ipam: cannot release %s of network %s: %w", ip, network, err)
	}
	delete(a.allocs, k)
	delete(a.used, netKey{network, ip})
	a.mu.Unlock()
	a.claim.Unclaim(network, ip, endpoint)
	return nil
}

// Address returns the address allocated to endpoint on network, if any.
func (a *Allocator) Address(network, endpoint string) (netip.Addr, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ip, ok := a.allocs[Key{network, endpoint}]
	return ip, ok
}

// backoff returns a jittered delay for the given attempt (1-based):
// uniformly random in [d/2, d) with d doubling from backoffBase.
func backoff(attempt int) time.Duration {
	d := min(backoffBase<<min(attempt-1, 16), backoffMax)
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("ipam: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
