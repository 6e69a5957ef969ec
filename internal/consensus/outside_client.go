package consensus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// OutsideConfig configures an Outside.
type OutsideConfig struct {
	// Host is this host's name, as the voters know it.
	Host string
	// Servers are the voters to ask, at their tunnel addresses and raft
	// port; they are tried in turn.
	Servers []netip.AddrPort
	// Dial opens a connection to a server inside WireGuard.
	Dial func(ctx context.Context, to netip.AddrPort) (net.Conn, error)
	// Dir keeps the blocks granted to this host across restarts.
	Dir string
}

// Outside is the address-block log as a host outside it sees it (a laptop
// behind NAT; see outside.go): takes, pins and unpins are committed by a
// voter on its behalf, and the blocks granted are remembered in Dir. Its
// reads know this host's own blocks and pins only: the log itself refuses
// a pin of another host's address. It implements ipam.Blocks and is safe
// for concurrent use.
type Outside struct {
	cfg OutsideConfig
	l   *slog.Logger

	mu      sync.Mutex
	servers []netip.AddrPort
	next    int // the server to try first: the last that answered
	granted *grants
	pins    map[pinKey]Pin
	// cutOff is set when a request found no server that could commit,
	// and cleared by the next answer (see HasLeader).
	cutOff atomic.Bool
}

// outsideRetryWait is the pause after every server failed to answer.
const outsideRetryWait = 200 * time.Millisecond

// NewOutside returns the log as seen from outside, loading the blocks
// granted before a restart.
func NewOutside(cfg OutsideConfig, l *slog.Logger) (*Outside, error) {
	o := &Outside{cfg: cfg, l: l, servers: slices.Clone(cfg.Servers), pins: make(map[pinKey]Pin)}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	var err error
	if o.granted, err = loadGrants(cfg.Dir, l); err != nil {
		return nil, err
	}
	return o, nil
}

// HasLeader reports whether a voter committed or refused this host's
// last request, or none was made yet: false while the servers are out of
// reach (a laptop offline), so that an explicit address is honoured at
// once and pinned in the background (ipam.Allocator).
func (o *Outside) HasLeader() bool { return !o.cutOff.Load() }

// SetServers replaces the voters to ask (a reload).
func (o *Outside) SetServers(servers []netip.AddrPort) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.servers, o.next = slices.Clone(servers), 0
}

// Take asks a voter for a free block of subnet, bits long, for this host.
// It fails with a *QuorumError when no voter could commit it before ctx
// ends, and with an error matching ErrExhausted when no block is free.
func (o *Outside) Take(ctx context.Context, network string, subnet netip.Prefix, bits int) (netip.Prefix, error) {
	r, err := o.request(ctx, OutsideRequest{Op: OutsideTake, Network: network, Subnet: subnet, Bits: bits, ID: rand.Uint64() | 1})
	if err != nil {
		return netip.Prefix{}, err
	}
	if !r.Block.IsValid() || r.Block.Bits() != bits || !subnet.Contains(r.Block.Addr()) {
		return netip.Prefix{}, fmt.Errorf("consensus: a voter answered block %s for subnet %s /%d", r.Block, subnet, bits)
	}
	o.granted.add(Block{Network: network, Prefix: r.Block, Host: o.cfg.Host})
	return r.Block, nil
}

// Held returns this host's blocks of network inside subnet, in address
// order.
func (o *Outside) Held(network string, subnet netip.Prefix) []netip.Prefix {
	return o.granted.heldIn(nil, network, subnet)
}

// Owner returns this host's block of network that holds ip, if any.
func (o *Outside) Owner(network string, ip netip.Addr) (Block, bool) {
	return o.granted.owner(network, ip)
}

// Pinned returns this host's pin of ip of network, if a voter committed
// one since the start.
func (o *Outside) Pinned(network string, ip netip.Addr) (Pin, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pins[pinKey{network, ip}]
	return p, ok
}

// Pin asks a voter to record that endpoint of this host holds ip; a
// refusal by the log satisfies IsRefused.
func (o *Outside) Pin(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	if _, err := o.request(ctx, OutsideRequest{Op: OutsidePin, Network: network, IP: ip, Endpoint: endpoint}); err != nil {
		return err
	}
	o.mu.Lock()
	o.pins[pinKey{network, ip}] = Pin{Network: network, IP: ip, Host: o.cfg.Host, Endpoint: endpoint}
	o.mu.Unlock()
	return nil
}

// Unpin asks a voter to drop a pin of this host's endpoint.
func (o *Outside) Unpin(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	if _, err := o.request(ctx, OutsideRequest{Op: OutsideUnpin, Network: network, IP: ip, Endpoint: endpoint}); err != nil {
		return err
	}
	o.mu.Lock()
	if p, ok := o.pins[pinKey{network, ip}]; ok && p.Endpoint == endpoint {
		delete(o.pins, pinKey{network, ip})
	}
	o.mu.Unlock()
	return nil
}

// request sends r to the voters in turn until one commits or refuses it,
// or ctx ends.
func (o *Outside) request(ctx context.Context, r OutsideRequest) (OutsideReply, error) {
	o.mu.Lock()
	servers, first := o.servers, o.next
	o.mu.Unlock()
	qe := &QuorumError{All: len(servers) + 1}
	for {
		for i := range servers {
			k := (first + i) % len(servers)
			rep, err := o.ask(ctx, servers[k], r)
			switch {
			case err != nil:
				o.l.Debug("an address-block server did not answer", "server", servers[k].String(), "error", err)
				continue
			case rep.NoQuorum:
				qe.Up, qe.All = rep.Up, rep.All
				continue
			}
			o.mu.Lock()
			o.next = k
			o.mu.Unlock()
			o.cutOff.Store(false)
			switch {
			case rep.Failed != "":
				return rep, fmt.Errorf("consensus: a voter refused the request: %s", rep.Failed)
			case rep.Refused != "":
				return rep, &RefusedError{Msg: rep.Refused, Exhausted: rep.Exhausted}
			}
			return rep, nil
		}
		o.cutOff.Store(true)
		select {
		case <-ctx.Done():
			return OutsideReply{}, qe
		case <-time.After(outsideRetryWait):
		}
	}
}

// ask sends r to one server and reads its reply.
func (o *Outside) ask(ctx context.Context, to netip.AddrPort, r OutsideRequest) (OutsideReply, error) {
	actx, cancel := context.WithTimeout(ctx, outsideCommitWait+2*time.Second)
	defer cancel()
	c, err := o.cfg.Dial(actx, to)
	if err != nil {
		return OutsideReply{}, err
	}
	defer c.Close()
	if dl, ok := actx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(r); err != nil {
		return OutsideReply{}, err
	}
	var rep OutsideReply
	if err := json.NewDecoder(io.LimitReader(c, maxOutsideRequest)).Decode(&rep); err != nil {
		return OutsideReply{}, err
	}
	return rep, nil
}
