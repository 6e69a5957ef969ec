package tunnel

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// Docker's IPAM driver hands out an address before the endpoint that will
// use it exists, and Docker moves the interface into the container itself.
// The engine serves both with the usual allocator and attach path: an
// address is reserved under a key, and the attach that uses it takes it
// over under the lock, so no other allocation sees it free in between; the
// TAP is made in the daemon's own namespace (Handoff) for Docker to move.

// selfNetNS is the daemon's own network namespace, where handoff TAPs are
// made.
const selfNetNS = "/proc/self/ns/net"

// handoffPrefix starts the name of every handoff TAP, so that API callers
// cannot make other names in the daemon's (the host's) namespace.
const handoffPrefix = "vxw"

// ReserveAddress allocates an address of network under key (a name no
// endpoint uses), or exactly want when it is valid, with the same
// uniqueness as an attach. It is safe for concurrent use.
func (e *Engine) ReserveAddress(ctx context.Context, network, key string, want netip.Addr) (netip.Addr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.cfg.Networks {
		if n.Name == network {
			ctx, cancel := context.WithTimeout(ctx, allocTimeout)
			defer cancel()
			a, err := e.alloc.Allocate(ctx, n.Name, n.Subnet, n.Gateway, key, want)
			if err != nil {
				return netip.Addr{}, attachError(err)
			}
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("network %q: %w", network, api.ErrNotFound)
}

// ReleaseReservation gives back the address reserved under key.
func (e *Engine) ReleaseReservation(network, key string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.alloc.Release(network, key)
}

// AttachReserved is Attach for an endpoint whose address was reserved
// under key: the reservation is released and the address taken by the
// endpoint under the same lock. req.Address should name the address.
func (e *Engine) AttachReserved(ctx context.Context, req api.AttachRequest, key string) (api.Endpoint, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if key != "" {
		if err := e.alloc.Release(req.Network, key); err != nil {
			return api.Endpoint{}, err
		}
	}
	return e.unlockedAttach(req)
}

// SetAliases replaces the DNS aliases of an endpoint attached through the
// API, in place: its TAP stays, and every host learns the new names with
// its next records. Docker says a container's --network-alias names only
// once the container has started, after Join.
func (e *Engine) SetAliases(ctx context.Context, network, name string, aliases []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := epKey{network, name}
	d, ok := e.dynEps[k]
	p := e.ports[k]
	if !ok || p == nil {
		return fmt.Errorf("endpoint %q of network %q: %w", name, network, api.ErrNotFound)
	}
	for _, a := range aliases {
		if err := config.CheckLabel(a); err != nil || a == name {
			return fmt.Errorf("%w: alias %q is not a DNS label other than the endpoint's name", api.ErrInvalid, a)
		}
	}
	d.Endpoint.Aliases = slices.Clone(aliases)
	e.dynEps[k] = d
	p.cfg.Aliases = d.Endpoint.Aliases
	e.unlockedSaveEndpoint(k)
	e.sw.publish(e.unlockedBuildSnapshot())
	e.unlockedSyncPublishes()
	e.unlockedPublish()
	return nil
}
