package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/vxwire/vxwire/internal/atomicfile"
)

// grantedFile lists the blocks granted to this host.
const grantedFile = "granted.json"

// grants are the blocks granted to this host: committed by the log, but
// perhaps not yet applied here (an answer from the leader, or a voter
// answering a host outside the log). They are kept in grantedFile, so
// that a host cut off right after taking a block allocates inside it,
// even after a restart. It is safe for concurrent use.
type grants struct {
	path string
	l    *slog.Logger

	mu     sync.Mutex
	blocks []Block
}

// loadGrants reads the blocks granted before a restart from dir.
func loadGrants(dir string, l *slog.Logger) (*grants, error) {
	g := &grants{path: filepath.Join(dir, grantedFile), l: l}
	b, err := os.ReadFile(g.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("consensus: %w", err)
	default:
		if err := json.Unmarshal(b, &g.blocks); err != nil {
			return nil, fmt.Errorf("consensus: %s: malformed: %w", g.path, err)
		}
	}
	return g, nil
}

// add records b, on disk first.
func (g *grants) add(b Block) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if slices.Contains(g.blocks, b) {
		return
	}
	next := append(slices.Clone(g.blocks), b)
	data, _ := json.Marshal(next) // cannot fail for these types
	if err := atomicfile.Write(g.path, data, 0o600); err != nil {
		g.l.Error("cannot save a granted address block", "error", err)
	}
	g.blocks = next
}

// owner returns the granted block of network that holds ip.
func (g *grants) owner(network string, ip netip.Addr) (Block, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.blocks {
		if b.Network == network && b.Prefix.Contains(ip) {
			return b, true
		}
	}
	return Block{}, false
}

// heldIn appends to out the granted blocks of network inside subnet that
// out lacks, and returns out in address order.
func (g *grants) heldIn(out []netip.Prefix, network string, subnet netip.Prefix) []netip.Prefix {
	g.mu.Lock()
	for _, b := range g.blocks {
		if b.Network == network && subnet.Contains(b.Prefix.Addr()) && !slices.Contains(out, b.Prefix) {
			out = append(out, b.Prefix)
		}
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}
