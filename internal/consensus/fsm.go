package consensus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/atomicfile"
	"github.com/vxwire/vxwire/internal/config"
)

// Block is an address block of a network held by one host: the host hands
// out addresses inside it alone.
type Block struct {
	// Network is the network's name.
	Network string `json:"network"`
	// Prefix is the block.
	Prefix netip.Prefix `json:"prefix"`
	// Host is the holder.
	Host string `json:"host"`
}

// Pin is one address held outside the block scheme: an explicit address
// asked for by an operator, or one a host kept across a restart.
type Pin struct {
	// Network is the network's name.
	Network string `json:"network"`
	// IP is the address.
	IP netip.Addr `json:"ip"`
	// Host and Endpoint name the holder.
	Host     string `json:"host"`
	Endpoint string `json:"endpoint"`
}

// Operations of a command.
const (
	opTake  = "take"
	opPin   = "pin"
	opUnpin = "unpin"
)

// command is one entry of the replicated log.
type command struct {
	Op       string       `json:"op"`
	Network  string       `json:"network"`
	Subnet   netip.Prefix `json:"subnet,omitzero"`
	Bits     int          `json:"bits,omitempty"`
	Host     string       `json:"host"`
	IP       netip.Addr   `json:"ip,omitzero"`
	Endpoint string       `json:"endpoint,omitempty"`
	// ID identifies a Take across retries: a retry of a Take that was
	// committed although its proposer saw an error (a leader change, a
	// lost answer) gets the block the first one took.
	ID uint64 `json:"id,omitempty"`
	// Net is the definition of a network create (see networks.go).
	Net *config.Network `json:"net,omitempty"`
	// Pub is the publish of a publish add or removal (see publishes.go).
	Pub *config.Publish `json:"pub,omitempty"`
	// Svc is the service of a service add or removal (see services.go).
	Svc *config.Service `json:"svc,omitempty"`
	// Among, in a network removal, names the hosts whose endpoint names
	// on the network refuse it (the proposer's configured peers). The
	// log decides, so a name claimed just before the removal is seen.
	// A removal without it refuses for none, as earlier versions' did.
	Among []string `json:"among,omitempty"`
}

// recentTakes bounds how many Take IDs the log remembers per host.
const recentTakes = 64

// recentTake is a remembered Take.
type recentTake struct {
	Host  string       `json:"host"`
	ID    uint64       `json:"id"`
	Block netip.Prefix `json:"block"`
}

// result is what applying a command returns to its proposer.
type result struct {
	Block     netip.Prefix `json:"block,omitzero"`
	Err       string       `json:"error,omitempty"`
	Exhausted bool         `json:"exhausted,omitempty"`
	// Conflict marks a network create refused for a clash, Unknown a
	// removal of a network the log does not hold.
	Conflict bool `json:"conflict,omitempty"`
	Unknown  bool `json:"unknown,omitempty"`
	// Holder and HeldName name who holds a name a claim was refused.
	Holder   string `json:"holder,omitempty"`
	HeldName string `json:"held_name,omitempty"`
	// Index is the entry's index in the log.
	Index uint64 `json:"index,omitempty"`
	// VIP is the service VIP a vip-use committed (see vips.go).
	VIP netip.Addr `json:"vip,omitzero"`
}

// ErrExhausted is returned (wrapped) by Take when every block of the subnet
// is held.
var ErrExhausted = errors.New("no free address block")

// maxName bounds the endpoint of a pin (networks and hosts are bounded by
// their config rules).
const maxName = 255

// maxBlockBits bounds how many blocks a subnet is cut into (2^20), and so
// the work of one Take.
const maxBlockBits = 20

// check validates a command before it is proposed or applied; the same
// check runs on every replica, so a bad entry is refused deterministically.
func (c *command) check() error {
	if err := config.CheckLabel(c.Network); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if err := config.CheckHostName(c.Host); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	switch {
	case len(c.Among) > 0 && c.Op != opNetRemove:
		return errors.New("only a network removal names hosts")
	case len(c.Endpoint) > maxName:
		return errors.New("endpoint names are at most 255 bytes")
	case c.Op == opTake && (!c.Subnet.IsValid() || c.Subnet.Masked() != c.Subnet || !c.Subnet.Addr().Is4() ||
		c.Bits < c.Subnet.Bits() || c.Bits > 32 || c.Bits-c.Subnet.Bits() > maxBlockBits):
		return fmt.Errorf("bad block request %s /%d", c.Subnet, c.Bits)
	case (c.Op == opPin || c.Op == opUnpin) && (!c.IP.Is4() || c.Endpoint == ""):
		return errors.New("pin needs an IPv4 address and an endpoint")
	case c.Op == opNetCreate || c.Op == opNetRemove:
		if c.Pub != nil || c.Svc != nil {
			return errors.New("a network command carries a publish or a service")
		}
		return c.checkNet()
	case c.Op == opClaim || c.Op == opUnclaim:
		if c.Net != nil || c.Pub != nil || c.Svc != nil {
			return errors.New("a claim carries a definition")
		}
		return c.checkClaim()
	case c.Op == opPubAdd || c.Op == opPubRemove:
		if c.Svc != nil {
			return errors.New("a publish command carries a service")
		}
		return c.checkPub()
	case c.Op == opSvcAdd || c.Op == opSvcRemove:
		return c.checkSvc()
	case c.Op == opVIPUse || c.Op == opVIPDrop:
		return c.checkVIP()
	case c.Op != opTake && c.Op != opPin && c.Op != opUnpin:
		return fmt.Errorf("unknown operation %q", c.Op)
	case c.Net != nil || c.Pub != nil || c.Svc != nil:
		return errors.New("only network, publish and service commands carry a definition")
	}
	return nil
}

// fsm is the replicated state: blocks, pins, API networks, name claims,
// publishes, services and service VIPs. Raft calls
// Apply, Snapshot and Restore from its own goroutines; readers take mu.
//
// The state is durable by itself: every applied entry rewrites the state
// file (with the index it reflects) before Apply returns, so a restarted
// host knows every block and pin it had applied even before a leader tells
// it the commit index again. Raft is told not to restore snapshots on start
// (NoSnapshotRestoreOnStart); entries it applies again after a restart are
// skipped by index.
type fsm struct {
	path string // state file; "" keeps the state in memory only
	l    *slog.Logger

	mu     sync.RWMutex
	index  uint64  // index of the last applied entry
	blocks []Block // sorted by network, then prefix
	pins   map[pinKey]Pin
	recent []recentTake // oldest first, at most recentTakes per host
	nets   []Network    // sorted by name
	claims map[claimKey]Claim
	pubs   []Publish // sorted by protocol, port and listen address
	svcs   []Service // sorted by network and name
	vips   map[vipKey]VIP
	// changed receives a value (coalesced) when nets change; nil in
	// tests that do not watch.
	changed chan struct{}
}

type pinKey struct {
	Network string
	IP      netip.Addr
}

// openFSM loads the state file at path, if there is one.
func openFSM(path string, l *slog.Logger) (*fsm, error) {
	f := &fsm{path: path, l: l, pins: make(map[pinKey]Pin), claims: make(map[claimKey]Claim), changed: make(chan struct{}, 1)}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("consensus: cannot read state: %w", err)
	}
	if err := f.restore(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("consensus: %s: %w", path, err)
	}
	return f, nil
}

// unlockedSave writes the state file.
func (f *fsm) unlockedSave() {
	if f.path == "" {
		return
	}
	if err := atomicfile.Write(f.path, f.unlockedEncode(), 0o600); err != nil {
		f.l.Error("cannot save address blocks", "error", err)
	}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return result{}
	}
	r := f.apply(l)
	r.Index = l.Index
	return r
}

func (f *fsm) apply(l *raft.Log) result {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return result{Err: "malformed command"}
	}
	if err := c.check(); err != nil {
		return result{Err: err.Error()}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Index <= f.index {
		return result{Err: "entry applied before a restart"}
	}
	f.index = l.Index
	defer f.unlockedSave()
	switch c.Op {
	case opTake:
		return f.unlockedTake(c)
	case opPin:
		return f.unlockedPin(c)
	case opNetCreate:
		return f.unlockedCreateNet(c)
	case opNetRemove:
		return f.unlockedRemoveNet(c)
	case opClaim:
		return f.unlockedClaim(c)
	case opUnclaim:
		return f.unlockedUnclaim(c)
	case opPubAdd:
		return f.unlockedAddPub(c)
	case opPubRemove:
		return f.unlockedRemovePub(c)
	case opSvcAdd:
		return f.unlockedAddSvc(c)
	case opSvcRemove:
		return f.unlockedRemoveSvc(c)
	case opVIPUse:
		return f.unlockedUseVIP(c)
	case opVIPDrop:
		return f.unlockedDropVIP(c)
	default:
		k := pinKey{c.Network, c.IP}
		if p, ok := f.pins[k]; ok && p.Host == c.Host && p.Endpoint == c.Endpoint {
			delete(f.pins, k)
		}
		return result{}
	}
}

// unlockedTake gives c.Host the first block of c.Subnet that overlaps no
// held block of the network.
func (f *fsm) unlockedTake(c command) result {
	if c.ID != 0 {
		for _, r := range f.recent {
			if r.Host == c.Host && r.ID == c.ID {
				return result{Block: r.Block}
			}
		}
	}
	r := f.unlockedTakeNew(c)
	if c.ID != 0 && r.Err == "" {
		f.recent = append(f.recent, recentTake{Host: c.Host, ID: c.ID, Block: r.Block})
		n := 0
		for _, o := range f.recent {
			if o.Host == c.Host {
				n++
			}
		}
		if n > recentTakes {
			i := slices.IndexFunc(f.recent, func(o recentTake) bool { return o.Host == c.Host })
			f.recent = slices.Delete(f.recent, i, i+1)
		}
	}
	return r
}

func (f *fsm) unlockedTakeNew(c command) result {
	size := uint64(1) << (32 - c.Bits)
	base := uint64(ipv4Uint(c.Subnet.Addr()))
	n := uint64(1) << (c.Bits - c.Subnet.Bits())
	for i := range n {
		p := netip.PrefixFrom(uintIPv4(uint32(base+i*size)), c.Bits)
		if f.unlockedOverlaps(c.Network, p) {
			continue
		}
		b := Block{Network: c.Network, Prefix: p, Host: c.Host}
		i, _ := slices.BinarySearchFunc(f.blocks, b, compareBlocks)
		f.blocks = slices.Insert(f.blocks, i, b)
		return result{Block: p}
	}
	return result{Err: fmt.Sprintf("subnet %s of network %s: %v", c.Subnet, c.Network, ErrExhausted), Exhausted: true}
}

func (f *fsm) unlockedOverlaps(network string, p netip.Prefix) bool {
	for _, b := range f.blocks {
		if b.Network == network && b.Prefix.Overlaps(p) {
			return true
		}
	}
	return false
}

// unlockedPin pins c.IP to c.Host's endpoint unless another host's block
// or pin holds it. A pin of the same host passes to the new endpoint:
// which of its own endpoints holds an address is the host's decision
// (its allocator never gives one address to two), and a host hands an
// address from one endpoint to another (a Docker reservation to the
// container) faster than the old pin's removal commits. The removal
// names the old endpoint, so it cannot drop the new pin.
func (f *fsm) unlockedPin(c command) result {
	if b, ok := f.unlockedOwner(c.Network, c.IP); ok && b.Host != c.Host {
		return result{Err: fmt.Sprintf("address %s of network %s lies in block %s of host %s", c.IP, c.Network, b.Prefix, b.Host)}
	}
	k := pinKey{c.Network, c.IP}
	if p, ok := f.pins[k]; ok && p.Host != c.Host {
		return result{Err: fmt.Sprintf("address %s of network %s is in use by %s on %s", c.IP, c.Network, p.Endpoint, p.Host)}
	}
	f.pins[k] = Pin{Network: c.Network, IP: c.IP, Host: c.Host, Endpoint: c.Endpoint}
	return result{}
}

func (f *fsm) unlockedOwner(network string, ip netip.Addr) (Block, bool) {
	for _, b := range f.blocks {
		if b.Network == network && b.Prefix.Contains(ip) {
			return b, true
		}
	}
	return Block{}, false
}

// owner returns the block of network that holds ip.
func (f *fsm) owner(network string, ip netip.Addr) (Block, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.unlockedOwner(network, ip)
}

// held returns host's blocks of network inside subnet, in address order.
func (f *fsm) held(network string, subnet netip.Prefix, host string) []netip.Prefix {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []netip.Prefix
	for _, b := range f.blocks {
		if b.Network == network && b.Host == host && subnet.Contains(b.Prefix.Addr()) {
			out = append(out, b.Prefix)
		}
	}
	return out
}

// pinned returns the pin of ip in network.
func (f *fsm) pinned(network string, ip netip.Addr) (Pin, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	p, ok := f.pins[pinKey{network, ip}]
	return p, ok
}

func compareBlocks(a, b Block) int {
	if a.Network != b.Network {
		if a.Network < b.Network {
			return -1
		}
		return 1
	}
	return a.Prefix.Addr().Compare(b.Prefix.Addr())
}

// snapshotState is the JSON form of a snapshot and of the state file.
type snapshotState struct {
	Index  uint64       `json:"index"`
	Blocks []Block      `json:"blocks"`
	Pins   []Pin        `json:"pins"`
	Recent []recentTake `json:"recent,omitempty"`
	// Networks are the API networks, sorted by name.
	Networks []Network `json:"networks,omitempty"`
	// Claims are the endpoint names held, sorted by network and name.
	Claims []Claim `json:"claims,omitempty"`
	// Publishes are the API publishes, sorted.
	Publishes []Publish `json:"publishes,omitempty"`
	// Services are the API services, sorted.
	Services []Service `json:"services,omitempty"`
	// VIPs are the services' virtual IPs, sorted by network and service.
	VIPs []VIP `json:"vips,omitempty"`
}

func (f *fsm) unlockedEncode() []byte {
	st := snapshotState{Index: f.index, Blocks: slices.Clone(f.blocks), Recent: slices.Clone(f.recent), Networks: slices.Clone(f.nets), Publishes: slices.Clone(f.pubs), Services: slices.Clone(f.svcs)}
	if len(f.claims) > 0 {
		st.Claims = f.unlockedClaimList()
	}
	if len(f.vips) > 0 {
		st.VIPs = f.unlockedVIPList()
	}
	for _, p := range f.pins {
		st.Pins = append(st.Pins, p)
	}
	slices.SortFunc(st.Pins, func(a, b Pin) int {
		return compareBlocks(Block{Network: a.Network, Prefix: netip.PrefixFrom(a.IP, 32)},
			Block{Network: b.Network, Prefix: netip.PrefixFrom(b.IP, 32)})
	})
	b, _ := json.Marshal(st) // cannot fail for these types
	return b
}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return snapshot(f.unlockedEncode()), nil
}

// Restore implements raft.FSM: it replaces the state with a snapshot's
// (sent by the leader to a host that lags behind).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.restore(rc); err != nil {
		return err
	}
	f.mu.Lock()
	f.unlockedSave()
	f.mu.Unlock()
	f.signal()
	return nil
}

func (f *fsm) restore(r io.Reader) error {
	var st snapshotState
	if err := json.NewDecoder(io.LimitReader(r, 256<<20)).Decode(&st); err != nil {
		return fmt.Errorf("consensus: malformed state: %w", err)
	}
	pins := make(map[pinKey]Pin, len(st.Pins))
	for _, p := range st.Pins {
		pins[pinKey{p.Network, p.IP}] = p
	}
	slices.SortFunc(st.Blocks, compareBlocks)
	// A definition the config rules refuse, or a second one of a name,
	// never entered the log; drop it rather than carry it.
	nets := make([]Network, 0, len(st.Networks))
	for _, n := range st.Networks {
		if config.CheckNetwork(&n.Def) == nil && !slices.ContainsFunc(nets, func(o Network) bool { return o.Def.Name == n.Def.Name }) {
			nets = append(nets, n)
		}
	}
	slices.SortFunc(nets, compareNets)
	f.mu.Lock()
	f.index, f.blocks, f.pins, f.recent, f.nets = st.Index, st.Blocks, pins, st.Recent, nets
	f.claims = restoreClaims(st.Claims)
	f.pubs = validPubs(st.Publishes)
	f.svcs = validSvcs(st.Services)
	f.vips = restoreVIPs(st.VIPs)
	f.mu.Unlock()
	return nil
}

// appliedIndex returns the index of the last applied entry.
func (f *fsm) appliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// snapshot is the encoded state at the time raft asked for it.
type snapshot []byte

// Persist implements raft.FSMSnapshot.
func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (snapshot) Release() {}

func ipv4Uint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintIPv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
