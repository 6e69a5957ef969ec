package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vxwire/vxwire/internal/tally"
)

// ErrClosed is returned by operations on a closed Cluster.
var ErrClosed = errors.New("gossip: cluster closed")

// maxSends bounds the TCP sends (pulls, state replies) in flight; beyond
// it sends are dropped, which the protocols tolerate: an unanswered pull is
// repaired by push/pull.
const maxSends = 64

// Member is one host of the cluster as this host sees it.
type Member struct {
	// Name is the host's NodeName.
	Name string
	// Addr is its gossip address.
	Addr netip.AddrPort
	// Alive is false for a suspected host and for one that failed
	// recently (failed hosts are listed until ForgetFailedAfter).
	Alive bool
}

// Cluster replicates endpoint records and API network definitions between
// hosts. All methods are safe for concurrent use. It owns one memberlist
// instance and a few goroutines, all ended by Close.
type Cluster struct {
	cfg Config
	tm  timings
	l   *slog.Logger

	// ml is set once memberlist.Create returns; delegates that fire
	// earlier find it nil and skip network sends.
	ml    atomic.Pointer[memberlist.Memberlist]
	queue *sendQueue
	// numLive feeds the queue's retransmit scaling without taking mu.
	numLive atomic.Int32
	// refused counts input refused, by reason.
	refused tally.Counts
	// transport drops packets and connections of strangers.
	transport *filterTransport
	// tunnel is the transport's tunnel path, nil without Config.Tunnel.
	tunnel *tunnelTransport

	mu    sync.Mutex
	tab   *table
	local hostState
	pulls map[string]version
	// addrs holds a copy of each live member's node, taken in the event
	// delegate while memberlist holds its node lock: the nodes it hands
	// out are written by its own goroutines on every alive message, so
	// reading them later for a send would race.
	addrs  map[string]*memberlist.Node
	closed bool

	changes chan struct{}
	// others counts the changes signalled that SetLocal did not make
	// (see OthersChanged).
	others    atomic.Uint64
	done      chan struct{}
	joined    chan struct{}
	sends     chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts gossip on cfg.BindAddr and joins cfg.Seeds in the background.
// A host with no reachable seed works alone and keeps trying. l receives
// memberlist's own log at Debug.
func New(cfg Config, l *slog.Logger) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tm := deriveTimings(&cfg)
	c := &Cluster{
		cfg:     cfg,
		tm:      tm,
		l:       l.With("node", cfg.NodeName),
		tab:     newTable(cfg.NodeName),
		pulls:   make(map[string]version),
		addrs:   make(map[string]*memberlist.Node),
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
		joined:  make(chan struct{}),
		sends:   make(chan struct{}, maxSends),
	}
	c.local = hostState{Host: cfg.NodeName, Version: version{Epoch: uint64(time.Now().UnixNano())}}
	c.tab.hosts[cfg.NodeName] = &entry{state: c.local, seen: time.Now()}
	c.numLive.Store(1)

	mc, err := cfg.memberlistConfig(tm)
	if err != nil {
		return nil, err
	}
	mc.Logger = newStdLogger(l, func() { c.refused.Add(RefusedUnauthenticated) })
	inner, err := c.openTransport(mc)
	if err != nil {
		return nil, err
	}
	c.transport = newFilterTransport(inner, func() { c.refused.Add(RefusedStranger) }, c.cfg.Crash)
	if cfg.transport == nil {
		c.transport.local = cfg.BindAddr
	}
	if tt, ok := inner.(*tunnelTransport); ok {
		c.transport.tunneled = tt.tunneled
		c.tunnel = tt
	}
	c.transport.setAllowed(cfg.Peers)
	mc.Transport = c.transport
	mc.Delegate = (*delegate)(c)
	mc.Alive = (*aliveGate)(c)
	mc.Events = (*events)(c)
	c.queue = &sendQueue{
		numNodes: func() int { return int(c.numLive.Load()) },
		mult:     mc.RetransmitMult,
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		c.transport.Shutdown()
		return nil, fmt.Errorf("gossip: cannot start on %s: %w", cfg.BindAddr, err)
	}
	c.ml.Store(ml)
	c.l.Info("gossip started", "addr", c.Addr().String())
	c.wg.Add(2)
	c.cfg.Crash.Go("gossip join", c.routineJoin)
	c.cfg.Crash.Go("gossip maintain", c.routineMaintain)
	return c, nil
}

// autoBindTries bounds the tries of netTransport for a port the kernel
// picks.
const autoBindTries = 10

// netTransport opens memberlist's TCP and UDP listeners on mc's address
// and port. Port 0 lets the kernel pick the TCP port and then binds UDP to
// the same number, which another socket may already hold; that case is
// tried again with a new pick, a bounded number of times.
func netTransport(mc *memberlist.Config) (*memberlist.NetTransport, error) {
	for try := 1; ; try++ {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{mc.BindAddr},
			BindPort:  mc.BindPort,
			Logger:    mc.Logger,
		})
		if err == nil || mc.BindPort != 0 || try == autoBindTries {
			return nt, err
		}
	}
}

// openTransport opens memberlist's network transport on the underlay and,
// with a Tunnel, puts the tunnel path beside it (tunnel.go).
func (c *Cluster) openTransport(mc *memberlist.Config) (memberlist.NodeAwareTransport, error) {
	cfg := c.cfg
	if cfg.transport != nil {
		return cfg.transport(mc)
	}
	var under memberlist.NodeAwareTransport
	if !cfg.NoUnderlay {
		nt, err := netTransport(mc)
		if err != nil {
			return nil, fmt.Errorf("gossip: cannot listen on %s: %w", cfg.BindAddr, err)
		}
		if mc.BindPort == 0 {
			mc.BindPort = nt.GetAutoBindPort()
			mc.AdvertisePort = mc.BindPort
		}
		if cfg.Tunnel == nil {
			return nt, nil
		}
		under = nt
	}
	tt, err := newTunnelTransport(under, cfg.Tunnel, mc.BindPort, cfg.ViaTunnel, func() { c.refused.Add(RefusedStranger) }, cfg.Crash)
	if err != nil {
		if under != nil {
			under.Shutdown()
		}
		return nil, fmt.Errorf("gossip: cannot listen in the tunnel: %w", err)
	}
	return tt, nil
}

// SetPeers replaces the addresses gossip accepts packets and connections
// from (see Config.Peers); this host's own address stays accepted.
func (c *Cluster) SetPeers(addrs []netip.Addr) {
	c.transport.setAllowed(append([]netip.Addr{c.cfg.BindAddr}, addrs...))
}

// SetViaTunnel replaces the peers gossip reaches inside WireGuard (see
// Config.ViaTunnel), on a cluster started with a Tunnel; without one it
// does nothing.
func (c *Cluster) SetViaTunnel(via map[netip.Addr]netip.Addr) {
	if c.tunnel != nil {
		c.tunnel.setVia(via)
	}
}

// Addr returns the gossip address this host listens on and advertises.
func (c *Cluster) Addr() netip.AddrPort {
	n := c.ml.Load().LocalNode()
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

// Close leaves the cluster, so that other hosts drop this host's records
// at once, and stops every goroutine. It waits for the leave message to go
// out for at most two gossip intervals (see timings.leave): when every
// peer is leaving too, none is left to send it to, and a peer that misses
// it declares this host dead later instead. It is idempotent and safe to call
// concurrently; later calls return the first result. A probe memberlist
// had in flight may finish up to one probe interval (DeadAfter/30) later.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		ml := c.ml.Load()
		if err := ml.Leave(c.tm.leave); err != nil {
			c.l.Warn("gossip leave was not confirmed", "error", err)
		}
		if err := ml.Shutdown(); err != nil {
			c.closeErr = fmt.Errorf("gossip: cannot shut down: %w", err)
		}
		c.wg.Wait()
	})
	return c.closeErr
}

// SetLocal replaces this host's records with recs and announces them. The
// records are copied; Host is set to the local NodeName. Records with an
// empty or over-long name or network, or an invalid IP, are dropped and
// logged.
func (c *Cluster) SetLocal(recs []Record) {
	norm := make([]Record, 0, len(recs))
	for i := range recs {
		r := recs[i].clone()
		r.Host = c.cfg.NodeName
		if err := validRecord(&r); err != nil {
			c.l.Warn("record not announced", "error", err)
			continue
		}
		norm = append(norm, r)
	}
	slices.SortFunc(norm, compareRecords)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || recordsEqual(c.local.Records, norm) {
		return
	}
	c.local.Records = norm
	c.unlockedPublish()
	c.signalLocal()
}

// Records returns every known record, this host's included, sorted by
// network, name, host and IP. The result is a copy owned by the caller.
func (c *Cluster) Records() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.tab.visible()
	out := make([]Record, len(v))
	for i := range v {
		out[i] = v[i].clone()
	}
	return out
}

// Changes returns a channel that receives a value whenever Records or
// Networks may have changed. It has capacity one and coalesces: a receiver that was
// busy sees one signal for many changes and must call Records and
// Networks again.
func (c *Cluster) Changes() <-chan struct{} { return c.changes }

// Members returns the hosts this host knows, itself included, sorted by
// name: live members, then recently failed ones with Alive false.
func (c *Cluster) Members() []Member {
	var out []Member
	seen := make(map[string]bool)
	for _, n := range c.ml.Load().Members() {
		a, _ := netip.AddrFromSlice(n.Addr)
		out = append(out, Member{
			Name:  n.Name,
			Addr:  netip.AddrPortFrom(a.Unmap(), n.Port),
			Alive: n.State == memberlist.StateAlive,
		})
		seen[n.Name] = true
	}
	c.mu.Lock()
	for h := range c.tab.failed {
		if !seen[h] {
			out = append(out, Member{Name: h})
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// signal notes a change of Records or Networks without blocking.
// OthersChanged returns a count that grows with every change Changes
// signals that SetLocal did not make: another host's records, networks or
// liveness. It grows before the signal is sent, once Records shows the
// change, so a receiver that knows its own records (it set them) may skip
// a signal after which the count is the one it last acted on.
func (c *Cluster) OthersChanged() uint64 { return c.others.Load() }

// signal tells Changes' receiver that the table changed, not through
// SetLocal. mu must be held.
func (c *Cluster) signal() {
	c.others.Add(1)
	c.signalLocal()
}

// signalLocal tells Changes' receiver that the table changed.
func (c *Cluster) signalLocal() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// unlockedPublish bumps the local version, stores the local state in the
// table and queues its broadcast. mu must be held.
func (c *Cluster) unlockedPublish() {
	c.local.Version.Counter++
	c.tab.hosts[c.cfg.NodeName] = &entry{state: c.local, seen: time.Now()}
	c.tab.invalidate()
	c.queueState(&c.local)
}

// queueState queues s for UDP gossip: whole when small, otherwise as a
// notice that makes receivers pull it over TCP.
func (c *Cluster) queueState(s *hostState) {
	b := encode(nil, &message{Type: msgState, State: *s})
	if len(b) > maxBroadcast {
		b = encode(nil, &message{Type: msgNotice, State: hostState{Host: s.Host, Version: s.Version}})
	}
	c.queue.queue(s.Host, b)
}

// unlockedApply takes in a state received from a peer. rebroadcast passes
// it on by gossip, as for states that arrived by gossip. mu must be held.
func (c *Cluster) unlockedApply(s hostState, rebroadcast bool) {
	if s.Host == c.cfg.NodeName {
		if err := checkVersion(s.Host, s.Version, time.Now()); err != nil {
			c.count(err, RefusedVersion)
			return
		}
		if s.Version.compare(c.local.Version) > 0 {
			// A previous life of this host with a clock ahead of ours:
			// outrank it so our records win.
			c.l.Info("outranking a newer state of this host from a previous run")
			c.local.Version = version{Epoch: s.Version.Epoch + 1}
			c.unlockedPublish()
		}
		return
	}
	now := time.Now()
	if err := c.unlockedCheckState(&s, now); err != nil {
		c.count(err, RefusedRecord)
		return
	}
	taken, changed := c.tab.apply(s, now)
	if !taken {
		return
	}
	if v, ok := c.pulls[s.Host]; ok && v.compare(s.Version) <= 0 {
		delete(c.pulls, s.Host)
	}
	if rebroadcast {
		c.queueState(&s)
	}
	if changed {
		c.signal()
	}
}

// unlockedRequestPull asks host for its state unless a pull for at least v
// is already under way. mu must be held.
func (c *Cluster) unlockedRequestPull(host string, v version) {
	if p, ok := c.pulls[host]; ok && p.compare(v) >= 0 {
		return
	}
	c.pulls[host] = v
	c.unlockedSend(host, encode(nil, &message{Type: msgPull, From: c.cfg.NodeName}), func(error) {
		c.mu.Lock()
		delete(c.pulls, host)
		c.mu.Unlock()
	})
}

// unlockedSend sends msg to host over TCP from a new goroutine, calling
// onErr (if not nil) from that goroutine, without mu, when it cannot be
// delivered. After Close began nothing is sent and onErr is not called.
// mu must be held, so that no goroutine starts after Close began waiting.
func (c *Cluster) unlockedSend(host string, msg []byte, onErr func(error)) {
	fail := func(err error) {
		if onErr != nil {
			onErr(err)
		}
	}
	if c.closed {
		// Waiters also watch done, so nobody needs to hear about this.
		return
	}
	c.wg.Add(1)
	select {
	case c.sends <- struct{}{}:
	default:
		c.l.Debug("gossip send dropped: too many in flight", "peer", host)
		go func() {
			defer c.cfg.Crash.Recover(RecoveredSend, nil)
			defer c.wg.Done()
			fail(errors.New("gossip: too many sends in flight"))
		}()
		return
	}
	go func() {
		defer c.cfg.Crash.Recover(RecoveredSend, nil)
		defer c.wg.Done()
		defer func() { <-c.sends }()
		if err := c.sendNow(host, msg); err != nil {
			if c.l.Enabled(context.Background(), slog.LevelDebug) {
				c.l.Debug("gossip send failed", "peer", host, "error", err)
			}
			fail(err)
		}
	}()
}

// memberWait bounds how long a send waits for its destination to appear
// in the member list. A host that has just joined (or restarted with a new
// incarnation) asks for state the moment its join completes, before every
// other member has processed its alive message; answering it must wait for
// that.
const memberWait = 2 * time.Second

func (c *Cluster) sendNow(host string, msg []byte) error {
	ml := c.ml.Load()
	if ml == nil {
		return errors.New("gossip: not started")
	}
	deadline := time.Now().Add(memberWait)
	for {
		c.mu.Lock()
		n, ok := c.addrs[host]
		c.mu.Unlock()
		if ok {
			if err := ml.SendReliable(n, msg); err != nil {
				return fmt.Errorf("gossip: cannot send to %s: %w", host, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gossip: %s is not a member", host)
		}
		select {
		case <-c.done:
			return ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// routineJoin joins the seeds, retrying with bounded exponential backoff
// and jitter while none answers, and again whenever this host is alone.
func (c *Cluster) routineJoin() {
	defer c.wg.Done()
	self := c.Addr()
	var seeds []string
	for _, s := range c.cfg.Seeds {
		if s != self {
			seeds = append(seeds, s.String())
		}
	}
	if len(seeds) == 0 {
		close(c.joined)
		return
	}
	minWait, backoff := c.tm.probeInterval, c.tm.probeInterval
	idle := max(c.cfg.DeadAfter/4, minWait)
	first := true
	for {
		wait := idle
		if c.numLive.Load() <= 1 {
			n, err := c.ml.Load().Join(seeds)
			if n > 0 {
				c.l.Info("joined gossip cluster", "contacted", n)
				backoff = minWait
			} else {
				c.l.Debug("no seed answered", "error", err)
				wait = backoff/2 + rand.N(backoff/2+1)
				backoff = min(2*backoff, c.tm.joinMax)
			}
		}
		if first {
			close(c.joined)
			first = false
		}
		select {
		case <-c.done:
			return
		case <-time.After(wait):
		}
	}
}

// routineMaintain drops states of hosts that are no longer members and
// forgets long-failed hosts.
func (c *Cluster) routineMaintain() {
	defer c.wg.Done()
	tick := time.NewTicker(c.tm.maintain)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-tick.C:
			c.mu.Lock()
			if c.tab.sweep(now, c.cfg.DeadAfter/3, c.cfg.ForgetFailedAfter) {
				c.signal()
			}
			c.mu.Unlock()
		}
	}
}

// Lookup returns the endpoint and host holding ip in network, from the
// records known here (ipam.Records). Address uniqueness itself is kept by
// the address-block log (internal/consensus), not by gossip.
func (c *Cluster) Lookup(network string, ip netip.Addr) (endpoint, host string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.tab.lookup(addrKey{network, ip})
	return o.Endpoint, o.Host, ok
}
