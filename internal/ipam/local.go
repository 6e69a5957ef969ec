package ipam

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vxwire/vxwire/internal/consensus"
)

// Local is the Blocks of a host without voting peers: nothing needs to be
// agreed, so it holds every subnet whole, as one block. It is stateless
// and safe for concurrent use.
type Local struct{}

var _ Blocks = Local{}

// Take implements Blocks: the whole subnet is already held.
func (Local) Take(_ context.Context, network string, subnet netip.Prefix, _ int) (netip.Prefix, error) {
	return netip.Prefix{}, fmt.Errorf("subnet %s of network %s: %w", subnet, network, consensus.ErrExhausted)
}

// Held implements Blocks.
func (Local) Held(_ string, subnet netip.Prefix) []netip.Prefix { return []netip.Prefix{subnet} }

// Owner implements Blocks: no other host holds anything.
func (Local) Owner(string, netip.Addr) (consensus.Block, bool) { return consensus.Block{}, false }

// Pinned implements Blocks.
func (Local) Pinned(string, netip.Addr) (consensus.Pin, bool) { return consensus.Pin{}, false }

// Pin implements Blocks.
func (Local) Pin(context.Context, string, netip.Addr, string) error { return nil }

// Unpin implements Blocks.
func (Local) Unpin(context.Context, string, netip.Addr, string) error { return nil }
