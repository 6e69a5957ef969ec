// Package consensus keeps the overlay's address blocks in a replicated log
// (hashicorp/raft) among the configured vxwire hosts. A host takes a block
// of a network's subnet through the log, which needs a majority of the
// voters, and then hands out the addresses inside it alone, so that
// allocating needs no round trip and works on either side of a partition,
// while no address is ever given out on both sides. Addresses held outside
// blocks (explicit ones, and those kept across a restart) are pinned in the
// same log, and so are the network definitions created through the API
// (see networks.go): the log refuses one that clashes with a network it
// holds, so two hosts racing cannot both create clashing networks. So are
// endpoint names (see claims.go), unique within their network.
//
// Every host starts with the same static voter set, taken from its config
// and bootstrapped once; the state lives under the host's state directory.
// The raft stream is TLS 1.3, both ends authenticated by a key derived from
// the cluster secret (see streamLayer); connections from addresses other
// than the voters' are closed before the handshake. Both refusals are
// counted (Node.Refused). A command proposed on a follower is
// forwarded to the leader over the same authenticated transport.
package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// ErrNoQuorum is returned (wrapped) when a command could not be committed
// in time because too few voters are reachable.
var ErrNoQuorum = errors.New("no quorum")

// ErrClosed is returned by a closed Node.
var ErrClosed = errors.New("consensus: closed")

// Voter is one member of the static voter set.
type Voter struct {
	// Name is the host's name, unique among voters.
	Name string
	// Addr is the host's raft address.
	Addr netip.AddrPort
}

// Config configures a Node.
type Config struct {
	// Name is this host's name; it must be one of Voters.
	Name string
	// Bind is the TCP address to listen on.
	Bind netip.AddrPort
	// Voters are every voting host, this one included.
	Voters []Voter
	// Secret is the cluster secret the transport key is derived from.
	Secret []byte
	// Dir holds the log, the stable state and the snapshots.
	Dir string
	// Fast shortens raft's timeouts, for tests on one machine.
	Fast bool
	// Crash receives panics of the transport's goroutines: its accept
	// loop reports to Crash.Died; a panic while authenticating or serving
	// one connection is logged, counted under RecoveredConn and closes
	// only that connection. raft's own goroutines cannot be wrapped.
	Crash safe.Reporter
}

// RecoveredConn is the kind under which Config.Crash counts panics while
// serving one connection of the log's transport.
const RecoveredConn = "raft conn"

// forwardTimeout bounds one forwarded command.
const forwardTimeout = 5 * time.Second

// Node is this host's member of the replicated log. Methods are safe for
// concurrent use.
type Node struct {
	cfg    Config
	l      *slog.Logger
	fsm    *fsm
	raft   *raft.Raft
	trans  *raft.NetworkTransport
	stream *streamLayer
	store  *Store

	// granted are the blocks Take returned (see grants).
	granted *grants

	// refused counts connections the transport turned away, by reason
	// (RefusedStranger, RefusedUnauthenticated).
	refused tally.Counts

	closeOnce sync.Once
	done      chan struct{}
}

// New starts this host's raft member, bootstrapping the voter set on the
// first start.
func New(cfg Config, l *slog.Logger) (*Node, error) {
	if !slices.ContainsFunc(cfg.Voters, func(v Voter) bool { return v.Name == cfg.Name }) {
		return nil, fmt.Errorf("consensus: host %q is not among the voters", cfg.Name)
	}
	n := &Node{cfg: cfg, l: l, done: make(chan struct{})}
	success := false
	defer func() {
		if !success {
			n.Close()
		}
	}()
	var err error
	if n.store, err = OpenStore(cfg.Dir); err != nil {
		return nil, err
	}
	if n.fsm, err = openFSM(filepath.Join(cfg.Dir, fsmFile), l); err != nil {
		return nil, err
	}
	if n.granted, err = loadGrants(cfg.Dir, l); err != nil {
		return nil, err
	}
	// Raft warns of every election it starts; its errors (an unreachable
	// voter) are what an operator needs to see.
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: logWriter{l}})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hl)
	if err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Bind.String())
	if err != nil {
		return nil, fmt.Errorf("consensus: cannot listen on %s: %w", cfg.Bind, err)
	}
	allowed := make([]netip.Addr, 0, len(cfg.Voters))
	for _, v := range cfg.Voters {
		allowed = append(allowed, v.Addr.Addr())
	}
	gate := gateOpts{allowed: allowed, local: cfg.Bind.Addr(), refused: &n.refused}
	if n.stream, err = newStreamLayer(ln, cfg.Secret, l, cfg.Crash, n.serve, gate); err != nil {
		ln.Close()
		return nil, err
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.stream, MaxPool: 3, Timeout: 5 * time.Second, Logger: hl,
		ServerAddressProvider: newVoterAddrs(cfg.Voters),
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Name)
	rc.Logger = hl
	rc.SnapshotThreshold = 1024
	// Generous timeouts: a loaded host must not lose leadership, nor a
	// healthy one start elections, because a heartbeat came late.
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, time.Second
	if cfg.Fast {
		rc.HeartbeatTimeout, rc.ElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
		rc.LeaderLeaseTimeout = 150 * time.Millisecond
	}
	rc.NoSnapshotRestoreOnStart = true
	if err := n.catchUp(snaps); err != nil {
		return nil, err
	}
	if err := n.bootstrap(rc, snaps); err != nil {
		return nil, err
	}
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.store, n.store, snaps, n.trans); err != nil {
		return nil, fmt.Errorf("consensus: %w", err)
	}
	success = true
	return n, nil
}

// fsmFile is the durable state of the log's state machine.
const fsmFile = "blocks.json"

// catchUp restores the newest snapshot if it is ahead of the state file
// (which a failed write of the file can leave behind): raft does not
// restore snapshots on start, since the state file is durable.
func (n *Node) catchUp(snaps *raft.FileSnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 || list[0].Index <= n.fsm.appliedIndex() {
		return err
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("consensus: cannot open snapshot: %w", err)
	}
	return n.fsm.Restore(rc)
}

// voterAddrs gives raft each voter's address from the config, not from
// the log, whose configuration is written once at bootstrap: a host
// whose address (host.gossip_address) changed is reached at the new one
// after a restart.
type voterAddrs map[raft.ServerID]raft.ServerAddress

func newVoterAddrs(voters []Voter) voterAddrs {
	m := make(voterAddrs, len(voters))
	for _, v := range voters {
		m[raft.ServerID(v.Name)] = raft.ServerAddress(v.Addr.String())
	}
	return m
}

// ServerAddr returns the configured address of id; for an unknown id
// raft falls back to the one in the log.
func (m voterAddrs) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a, ok := m[id]; ok {
		return a, nil
	}
	return "", fmt.Errorf("consensus: no configured voter %q", id)
}

// bootstrap writes the static voter set into a fresh log, once.
func (n *Node) bootstrap(rc *raft.Config, snaps raft.SnapshotStore) error {
	has, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil || has {
		return err
	}
	voters := slices.Clone(n.cfg.Voters)
	slices.SortFunc(voters, func(a, b Voter) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	var conf raft.Configuration
	for _, v := range voters {
		conf.Servers = append(conf.Servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(v.Name), Address: raft.ServerAddress(v.Addr.String()),
		})
	}
	if err := raft.BootstrapCluster(rc, n.store, n.store, snaps, n.trans, conf); err != nil {
		return fmt.Errorf("consensus: cannot bootstrap: %w", err)
	}
	return nil
}

// Addr returns the address the transport listens on.
func (n *Node) Addr() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(n.stream.Addr().String())
	return ap
}

// HasLeader reports whether this host knows a leader right now, that is
// whether a command has a chance to commit soon.
func (n *Node) HasLeader() bool {
	addr, _ := n.raft.LeaderWithID()
	return addr != ""
}

// Voters returns how many voters there are.
func (n *Node) Voters() int { return len(n.cfg.Voters) }

// Take takes a free block of subnet, Bits long, for this host and returns
// it. It needs a majority of the voters: without one it fails with an
// error wrapping ErrNoQuorum once ctx ends.
func (n *Node) Take(ctx context.Context, network string, subnet netip.Prefix, bits int) (netip.Prefix, error) {
	r, err := n.propose(ctx, command{Op: opTake, Network: network, Subnet: subnet, Bits: bits, Host: n.cfg.Name, ID: rand.Uint64() | 1})
	if err != nil {
		return netip.Prefix{}, err
	}
	n.granted.add(Block{Network: network, Prefix: r.Block, Host: n.cfg.Name})
	return r.Block, nil
}

// Pin records that endpoint of this host holds ip of network. It fails if
// the log gives the address to another host, or without a quorum.
func (n *Node) Pin(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	_, err := n.propose(ctx, command{Op: opPin, Network: network, IP: ip, Host: n.cfg.Name, Endpoint: endpoint})
	return err
}

// Unpin drops a pin of this host's endpoint.
func (n *Node) Unpin(ctx context.Context, network string, ip netip.Addr, endpoint string) error {
	_, err := n.propose(ctx, command{Op: opUnpin, Network: network, IP: ip, Host: n.cfg.Name, Endpoint: endpoint})
	return err
}

// Owner returns the block of network that holds ip, as applied here or
// granted to this host.
func (n *Node) Owner(network string, ip netip.Addr) (Block, bool) {
	if b, ok := n.fsm.owner(network, ip); ok {
		return b, true
	}
	return n.granted.owner(network, ip)
}

// Held returns the blocks of network inside subnet that this host holds,
// as applied here or granted to it, in address order.
func (n *Node) Held(network string, subnet netip.Prefix) []netip.Prefix {
	return n.granted.heldIn(n.fsm.held(network, subnet, n.cfg.Name), network, subnet)
}

// Pinned returns who pinned ip of network, as applied here.
func (n *Node) Pinned(network string, ip netip.Addr) (Pin, bool) { return n.fsm.pinned(network, ip) }

// RefusedError is a command the log committed and refused, for example a
// pin of another host's address, or a Take with no free block left.
type RefusedError struct {
	// Msg says why.
	Msg string
	// Exhausted marks a Take with no free block: the error then matches
	// ErrExhausted.
	Exhausted bool
	// Conflict and Unknown mark refused network changes (see Is).
	Conflict, Unknown bool
}

// Error implements error.
func (e *RefusedError) Error() string { return e.Msg }

// Is makes a refused Take match ErrExhausted, a network create refused for
// a clash ErrNetworkConflict, and a removal of an unknown network
// ErrUnknownNetwork.
func (e *RefusedError) Is(target error) bool {
	return e.Exhausted && target == ErrExhausted || e.Conflict && (target == ErrNetworkConflict || target == ErrPublishConflict || target == ErrServiceConflict) ||
		e.Unknown && (target == ErrUnknownNetwork || target == ErrUnknownPublish || target == ErrUnknownService)
}

// QuorumError reports a command that could not be committed in time; it
// matches ErrNoQuorum.
type QuorumError struct {
	// Up is how many voters, this host included, answered a probe when
	// the command gave up; All is how many voters there are.
	Up, All int
}

// Error implements error.
func (e *QuorumError) Error() string {
	return fmt.Sprintf("no quorum: %d of %d hosts reachable", e.Up, e.All)
}

// Unwrap returns ErrNoQuorum.
func (e *QuorumError) Unwrap() error { return ErrNoQuorum }

// IsRefused reports whether err is a refusal by the log (the command was
// committed and rejected, for example a pin of another host's address),
// as opposed to a failure to commit.
func IsRefused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// propose commits c, on the leader directly or forwarded to it, retrying
// until ctx ends.
func (n *Node) propose(ctx context.Context, c command) (result, error) {
	if err := c.check(); err != nil {
		return result{}, fmt.Errorf("consensus: %w", err)
	}
	data, _ := json.Marshal(c) // cannot fail for these types
	for {
		r, err := n.tryPropose(ctx, data)
		if err == nil && r.Err != "" {
			return r, &RefusedError{Msg: r.Err, Exhausted: r.Exhausted, Conflict: r.Conflict, Unknown: r.Unknown}
		}
		if err == nil {
			return r, nil
		}
		n.l.Debug("proposal not committed yet", "error", err)
		select {
		case <-n.done:
			return result{}, ErrClosed
		case <-ctx.Done():
			up, all := n.Reachable()
			return result{}, &QuorumError{Up: up, All: all}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *Node) tryPropose(ctx context.Context, data []byte) (result, error) {
	timeout := forwardTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return result{}, context.DeadlineExceeded
	}
	if n.raft.State() == raft.Leader {
		return n.apply(data, timeout)
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return result{}, errors.New("no leader")
	}
	return n.forward(string(addr), data, timeout)
}

func (n *Node) apply(data []byte, timeout time.Duration) (result, error) {
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		return result{}, err
	}
	r, _ := f.Response().(result)
	return r, nil
}

// forward sends a command to the leader and reads its result.
func (n *Node) forward(addr string, data []byte, timeout time.Duration) (result, error) {
	c, err := n.stream.dial(addr, kindForward, timeout)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(c).Encode(json.RawMessage(data)); err != nil {
		return result{}, err
	}
	var resp struct {
		Result result `json:"result"`
		Err    string `json:"transport_error,omitempty"`
	}
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&resp); err != nil {
		return result{}, err
	}
	if resp.Err != "" {
		return result{}, errors.New(resp.Err)
	}
	return resp.Result, nil
}

// serve answers an authenticated non-raft stream: a forwarded command (on
// the leader) or a probe.
func (n *Node) serve(kind byte, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(forwardTimeout + time.Second))
	switch kind {
	case kindProbe:
		_, _ = c.Write([]byte{kindProbe})
	case kindForward:
		var data json.RawMessage
		if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&data); err != nil {
			return
		}
		var resp struct {
			Result result `json:"result"`
			Err    string `json:"transport_error,omitempty"`
		}
		if n.raft.State() != raft.Leader {
			resp.Err = "not the leader"
		} else if r, err := n.apply(data, forwardTimeout); err != nil {
			resp.Err = err.Error()
		} else {
			resp.Result = r
		}
		_ = json.NewEncoder(c).Encode(resp)
	}
}

// Reachable returns how many voters, this host included, answer an
// authenticated probe, and how many voters there are.
func (n *Node) Reachable() (up, all int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	up = 1
	for _, v := range n.cfg.Voters {
		if v.Name == n.cfg.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer n.cfg.Crash.Recover(RecoveredConn, nil)
			defer wg.Done()
			if n.probe(v.Addr.String()) == nil {
				mu.Lock()
				up++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return up, len(n.cfg.Voters)
}

func (n *Node) probe(addr string) error {
	c, err := n.stream.dial(addr, kindProbe, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return err
}

// Refused returns how many connections the log's transport turned away,
// by reason (the Refused* constants). The map is a copy; nil when none
// were.
func (n *Node) Refused() map[string]uint64 { return n.refused.Snapshot() }

// Close stops the raft member and closes its files.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.done)
		if n.raft != nil {
			_ = n.raft.Shutdown().Error()
		}
		if n.trans != nil {
			_ = n.trans.Close()
		} else if n.stream != nil {
			_ = n.stream.Close()
		}
		if n.store != nil {
			_ = n.store.Close()
		}
	})
	return nil
}

// logWriter turns raft's log lines into slog records.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn("raft", "message", string(trimNL(p)))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}
