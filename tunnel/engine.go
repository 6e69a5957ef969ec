// Package tunnel is the vxwire engine: per-network L2 switches whose ports
// are containers' TAP devices and whose uplink is VXLAN to peer hosts.
//
// Two types divide the work. An Engine is the control plane: it owns the
// underlay sockets, the networks with their forwarding tables, the peers
// and the ports, applies the config file, the API and gossip, and builds
// immutable snapshots. Its Switch is the data plane (switch.go): one
// goroutine per port plus one for the underlay, each reading the snapshot
// the Engine last published. Each goroutine runs to completion: it reads a
// batch, switches every frame of it and writes the results before it reads
// again, so no frame is ever queued between goroutines and nothing is
// retained after a write returns.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipam"
	"github.com/vxwire/vxwire/internal/socks"
	"github.com/vxwire/vxwire/internal/tally"
	"github.com/vxwire/vxwire/netstack"
	"github.com/vxwire/vxwire/resolver"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// DefaultTxSockets is how many sending sockets the engine opens. Each is
// bound to its own ephemeral port and a frame's flow hash picks one, so the
// UDP source port carries flow entropy for ECMP (RFC 7348 §5) while every
// frame of one flow keeps one port.
const DefaultTxSockets = 4

// Options are the engine's dependencies. The zero value of every field
// means the production default, so tests inject fakes here rather than
// through build tags.
type Options struct {
	// Logger receives the engine's logs. Default: slog.Default().
	Logger *slog.Logger
	// Listen opens an underlay socket. Default: encap.Listen.
	Listen func(laddr netip.AddrPort, batch int) (encap.Conn, error)
	// OpenPort creates a container's port. Default: tap.Create.
	OpenPort func(cfg tap.Config, l *slog.Logger) (tap.Device, error)
	// OpenGateway creates a network's gateway. Default: netstack.NewGateway.
	OpenGateway func(cfg netstack.GatewayConfig, l *slog.Logger) (GatewayDevice, error)
	// OpenHost creates a host endpoint's stack. Default:
	// netstack.NewHostEndpoint.
	OpenHost func(cfg netstack.HostEndpointConfig, l *slog.Logger) (HostDevice, error)
	// OpenCrypto starts the WireGuard device of encrypted networks.
	// Default: crypto.New.
	OpenCrypto func(cfg crypto.Config, l *slog.Logger) (CryptoConn, error)
	// NewCluster starts gossip. Default: gossip.New. A nil cluster and nil
	// error run the engine without gossip and without the address-block
	// log: no remote records, and this host holds every subnet alone.
	NewCluster func(cfg gossip.Config, l *slog.Logger) (*gossip.Cluster, error)
	// UnderlayMTU reports the MTU of the interface holding addr; it is
	// used when the config sets no host.mtu. Default: look it up.
	UnderlayMTU func(addr netip.Addr) (int, error)
	// HostAddresses lists the addresses of the daemon's interfaces, which
	// egress may never reach. Default: net.InterfaceAddrs.
	HostAddresses func() ([]netip.Prefix, error)
	// AddressCheck is how often the host's addresses are read again
	// between applies, so that an address added later (a new interface,
	// a DHCP renewal) joins the egress deny list. Default 5 s.
	AddressCheck time.Duration
	// PathMTU reports the underlay path MTU to a peer, 0 or an error when
	// unknown. Default: encap.PathMTU, the kernel's value.
	PathMTU func(remote netip.AddrPort) (int, error)
	// PathMTUCheck is how often every peer's path MTU is read. Default
	// DefaultPathMTUCheck.
	PathMTUCheck time.Duration
	// TxSockets is the number of sending sockets. Default DefaultTxSockets.
	TxSockets int
	// Ageing is the FDB ageing time. Default DefaultAgeing.
	Ageing time.Duration
	// RemoveTAP removes a kept TAP a previous daemon left behind (see
	// persist.go). Default: tap.Remove.
	RemoveTAP func(netns, ifname string, id tap.Identity) error
	// NSHelper reaches the namespaces of TAPs passed with an attach (a
	// rootless container's), which the daemon may not enter: with it,
	// they are kept across a restart like the daemon's own (see
	// persist.go). Nil: passed TAPs go with the daemon.
	NSHelper tap.NSHelper
	// FDBMax bounds the learned entries of each network's forwarding
	// table. Default DefaultFDBMax.
	FDBMax int
}

// peer is a remote VTEP. Peers persist across reloads while their address
// is unchanged, so their counters and FDB entries survive a reload.
type peer struct {
	name string
	addr netip.AddrPort
	key  [32]byte // WireGuard public key; zero when the peer has none
	// roaming marks a peer without an underlay address (config
	// Peer.Roaming): addr is its tunnel address, and only the encrypted
	// path reaches it or hears from it.
	roaming bool
	removed atomic.Bool
	stats   counters
	// pmtu is the underlay path MTU to the peer as the kernel knows it,
	// 0 until known; written by routinePathMTU, read by the switch per
	// frame (switch_mtu.go).
	pmtu atomic.Int32
	// probe is set by routinePathMTU and taken by the next plain batch
	// to the peer with a large datagram, which then goes out alone so
	// that it carries DF (writeProbing).
	probe atomic.Bool
	// heard is when (unix ns, to the second) the switch last took a plain
	// VXLAN datagram from the peer; see heardFrom.
	heard atomic.Int64
}

// network is one VNI's switch state. It persists across reloads while its
// VNI, subnet, gateway and MTU are unchanged.
type network struct {
	cfg     config.Network
	mtu     int
	fdb     *fdb
	gw      *port            // the network's gateway port on this host
	dns     *resolver.Server // DNS on the gateway address
	stats   counters
	removed atomic.Bool
}

// Engine is the control plane of one host: it opens the sockets, ports and
// gateways, applies the config file, the API and gossip, builds snapshots
// and hands them to its Switch, which forwards. Its methods are safe for
// concurrent use.
type Engine struct {
	l    *slog.Logger
	opts Options

	sw  *Switch    // the data plane; see switch.go
	rx  encap.Conn // the underlay socket the switch reads
	enc CryptoConn // nil when the host has no key; the switch sends through it too

	egress    *netstack.EgressPolicy // shared by every gateway; see egress.go
	hostAddrs []netip.Prefix         // the host's addresses in egress; guarded by mu

	cluster *gossip.Cluster // nil without gossip
	blocks  *consensus.Node // nil without voting peers
	// outside is the log as a host behind NAT sees it, nil elsewhere;
	// outsiders are the peers a host running the log serves blocks to,
	// by tunnel address (see outside.go).
	outside   *consensus.Outside
	outsiders atomic.Pointer[map[netip.Addr]string]
	store     *ipam.FileStore
	alloc     *ipam.Allocator

	// mu serializes changes of configuration (Reload, Stop) and guards
	// the fields below. The data path never takes it.
	mu        sync.Mutex
	file      *config.Config // the config file as last applied
	cfg       *config.Config // effective: the file plus API networks and endpoints
	dynNets   map[string]config.Network
	removing  map[string]bool  // API networks whose removal is being proposed; see apinets.go
	adopt     []config.Network // API networks of state_dir to carry into the log; set by New
	dynEps    map[epKey]dynEndpoint
	dynPubs   []config.Publish          // API publishes without a log; see publish.go
	pub       *publisher                // published ports; see publish.go
	dynSvcs   []config.Service          // API services without a log; see service.go
	vips      map[svcKey]netip.Addr     // this host's VIP of each service
	svcErrs   map[svcKey]string         // why a service has no VIP here
	vipWant   map[svcKey]config.Network // VIP services applied here, with a log; see service_vip.go
	vipOwn    map[svcKey]bool           // services whose VIP this host may hold in IPAM
	vipBusy   map[svcKey]bool           // services whose VIP commit runs
	failedEps map[epKey]dynEndpoint     // saved endpoints not attached again; see runtime.go
	passed    map[epKey]*os.File        // TAPs passed with an attach, until adopted; see rootless.go
	networks  map[string]*network
	peers     map[string]*peer
	ports     map[epKey]*port
	portSeq   uint64              // attach order of ports, see multinet.go
	kept      map[epKey]tapRecord // TAPs a previous daemon left, until the first apply reopens them; see persist.go
	failedCfg map[epKey]error     // config file endpoints that could not attach
	claims    map[epKey]uint64    // IDs of the name claims of this host's ports; see claims.go
	stopped   bool
	// unapplied are the API networks this host does not carry, by name;
	// failed the definitions whose gateway could not be opened.
	unapplied map[string]unappliedNet
	failed    map[string]failedNet
	// refused counts control-plane input refused, by reason; badRecords
	// are the records from gossip refused by the last snapshot, so that
	// each is counted once.
	refused    tally.Counts
	recovered  tally.Counts // recovered per-flow panics by goroutine kind
	badRecords map[string]bool

	// socks is the SOCKS5 proxy (laptop.go), nil when off; doors are the
	// running forwards and exposes (doors.go). Guarded by mu.
	socks *socks.Server
	doors map[doorKey]*door

	wg   sync.WaitGroup
	done chan struct{}
	died chan error // the first goroutine crash; see goSafe
}

// New validates nothing further than config.Load did, opens the underlay
// sockets and the ports of cfg, and returns an engine that forwards once
// Start is called. On error everything opened so far is closed again.
func New(cfg *config.Config, opts Options) (_ *Engine, err error) {
	opts = opts.withDefaults()
	e := &Engine{
		l:         opts.Logger,
		opts:      opts,
		networks:  make(map[string]*network),
		peers:     make(map[string]*peer),
		ports:     make(map[epKey]*port),
		dynNets:   make(map[string]config.Network),
		dynEps:    make(map[epKey]dynEndpoint),
		vips:      make(map[svcKey]netip.Addr),
		egress:    new(netstack.EgressPolicy),
		failed:    make(map[string]failedNet),
		failedEps: make(map[epKey]dynEndpoint),
		claims:    make(map[epKey]uint64),
		done:      make(chan struct{}),
		died:      make(chan error, 1),
	}
	e.sw = newSwitch(opts.Logger)
	e.pub = newPublisher(opts.Logger, e.Reporter(), &e.refused)
	laddr := netip.AddrPortFrom(cfg.Host.Address, cfg.Host.Port)
	if e.rx, err = opts.Listen(laddr, 0); err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", laddr, err)
	}
	defer func() {
		if err != nil {
			e.closeAll()
		}
	}()
	for range opts.TxSockets {
		c, err := opts.Listen(netip.AddrPortFrom(cfg.Host.Address, 0), 0)
		if err != nil {
			return nil, fmt.Errorf("cannot open a sending socket on %s: %w", cfg.Host.Address, err)
		}
		e.sw.tx = append(e.sw.tx, c)
	}
	if err := e.openCrypto(cfg); err != nil {
		return nil, err
	}
	if err := e.openControl(cfg); err != nil {
		return nil, err
	}
	e.kept = loadTAPRecords(cfg.Host.StateDir, e.l)
	e.loadRuntimeState(cfg)
	if err := e.apply(cfg, false); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.unlockedRemoveLeftovers()
	e.mu.Unlock()
	if err := e.openSocks(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Listen == nil {
		o.Listen = func(a netip.AddrPort, batch int) (encap.Conn, error) { return encap.Listen(a, batch) }
	}
	if o.OpenPort == nil {
		o.OpenPort = func(c tap.Config, l *slog.Logger) (tap.Device, error) { return tap.Create(c, l) }
	}
	if o.RemoveTAP == nil {
		o.RemoveTAP = tap.Remove
	}
	if o.OpenGateway == nil {
		o.OpenGateway = defaultOpenGateway
	}
	if o.OpenHost == nil {
		o.OpenHost = defaultOpenHost
	}
	if o.OpenCrypto == nil {
		o.OpenCrypto = defaultOpenCrypto
	}
	if o.NewCluster == nil {
		o.NewCluster = defaultNewCluster
	}
	if o.UnderlayMTU == nil {
		o.UnderlayMTU = interfaceMTU
	}
	if o.HostAddresses == nil {
		o.HostAddresses = hostAddresses
	}
	if o.AddressCheck <= 0 {
		o.AddressCheck = defaultAddressCheck
	}
	if o.PathMTU == nil {
		o.PathMTU = encap.PathMTU
	}
	if o.PathMTUCheck <= 0 {
		o.PathMTUCheck = DefaultPathMTUCheck
	}
	if o.TxSockets <= 0 {
		o.TxSockets = DefaultTxSockets
	}
	if o.Ageing <= 0 {
		o.Ageing = DefaultAgeing
	}
	if o.FDBMax <= 0 {
		o.FDBMax = DefaultFDBMax
	}
	return o
}

// Start starts the forwarding goroutines. It returns at once.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.goSafe("read underlay", func() { e.sw.routineReadUnderlay(e.rx, false) })
	e.goSafe("host addresses", e.routineHostAddresses)
	if e.enc != nil {
		e.goSafe("read wireguard", func() { e.sw.routineReadUnderlay(e.enc, true) })
	}
	e.goSafe("age fdb", func() { e.sw.routineAge(e.opts.Ageing, e.done) })
	e.goSafe("path mtu", e.routinePathMTU)
	if e.cluster != nil {
		e.goSafe("records", e.routineRecords)
	}
	if len(e.adopt) > 0 {
		e.goSafe("adopt networks", e.routineAdopt)
	}
	if e.blocks != nil {
		e.goSafe("sweep names", e.routineSweepNames)
	}
	for _, p := range e.ports {
		e.startPort(p)
	}
	for _, n := range e.networks {
		e.startPort(n.gw)
	}
	if e.socks != nil {
		s := e.socks
		e.goSafe("socks", func() {
			if err := s.Serve(); err != nil {
				e.l.Error("socks5 proxy stopped", "error", err)
			}
		})
	}
}

func (e *Engine) startPort(p *port) {
	if p.started {
		return
	}
	p.started = true
	e.goSafe("read port "+p.key.network+"/"+p.key.name, func() { e.sw.routineReadPort(p) })
}

// Stop closes the sockets and every port, then waits for the goroutines
// to end. Containers keep their TAPs, with their addresses and routes, for
// the next daemon to reopen (see persist.go); detach removes a TAP. It is
// idempotent.
func (e *Engine) Stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		e.wg.Wait()
		return
	}
	e.stopped = true
	close(e.done)
	e.closeAll()
	e.mu.Unlock()
	e.wg.Wait()
}

// Wait blocks until the engine has stopped or ctx is done.
func (e *Engine) Wait(ctx context.Context) error {
	select {
	case <-e.done:
		e.wg.Wait()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeAll closes sockets and ports. Callers hold e.mu or own e alone.
func (e *Engine) closeAll() {
	e.unlockedClosePublishes()
	if e.rx != nil {
		e.rx.Close()
	}
	for _, c := range e.sw.tx {
		c.Close()
	}
	if e.enc != nil {
		e.enc.Close()
	}
	if e.socks != nil {
		e.socks.Close()
	}
	e.unlockedCloseDoors()
	for k, p := range e.ports {
		e.unlockedKeepPort(p) // containers keep their interfaces
		delete(e.ports, k)
	}
	for _, n := range e.networks {
		if n.gw != nil {
			e.unlockedClosePort(n.gw)
		}
	}
	if e.alloc != nil {
		e.alloc.Close()
	}
	if e.blocks != nil {
		e.blocks.Close()
	}
	if e.cluster != nil {
		e.cluster.Close()
	}
	if e.store != nil {
		e.store.Close()
	}
}

// Reload applies a new configuration: peers, networks and endpoints are
// added, changed and removed to match it. The host table cannot change
// without a restart; such a config is refused and the old one kept. Learned
// forwarding entries of networks and peers that stay are carried over.
func (e *Engine) Reload(cfg *config.Config) error {
	return e.apply(cfg, true)
}

// errStopped is returned by changes made after Stop.
var errStopped = errors.New("engine is stopped")
