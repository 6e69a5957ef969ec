package tunnel

// Published ports, the data side: a listener per publish on the host's
// underlay address, and a TCP proxy from each accepted connection to one
// of the publish's target endpoints.
//
//	client ──TCP──▶ host listener (publish.port)
//	                  │ pick a target (round robin over the live ones)
//	                  ├─ local endpoint: dial it from the network's gateway
//	                  │   address through the gateway's netstack
//	                  └─ endpoint on host H: relay (publish_relay.go) to H,
//	                      which dials it through its own gateway; plain TCP
//	                      on the underlay for a plain network, TCP inside
//	                      WireGuard (the inner stack) for an encrypted one
//
// The endpoint sees its host's gateway address as the source, as Docker's
// routing mesh shows its ingress address. Each connection borrows one
// pooled buffer per direction (internal/relay, as the laptop's doors),
// and the number of connections a publish carries at once is bounded.

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/relay"
	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

const (
	// maxPubConns bounds the connections one publish carries at once; a
	// connection beyond it is closed at once and counted.
	maxPubConns = 4096
	// pubDialTimeout bounds one attempt to reach a target.
	pubDialTimeout = 3 * time.Second
	// pubDialTries bounds the targets one connection tries.
	pubDialTries = 3
)

// pubCounters are one publish's counters on this host: its connections
// and flows (relay.Counters, which a UDP listener counts itself), failed
// dials and relayed connections.
type pubCounters struct {
	relay.Counters
	dialErrors, relayed atomic.Uint64
}

// innerDialer is the part of the inner stack (netstack.InnerStack) that
// the relay of encrypted networks dials with: TCP from this host's tunnel
// address, inside WireGuard.
type innerDialer interface {
	DialTCP(ctx context.Context, dst netip.AddrPort) (net.Conn, error)
}

// gatewayDialer is the part of a gateway that published ports use:
// netstack.Gateway dials from the gateway address into its network.
type gatewayDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// pubTarget is an endpoint a publish forwards to.
type pubTarget struct {
	ip   netip.Addr
	host string // "" for this host
}

// pubNameKey names the endpoints of one name or alias in one network.
type pubNameKey struct{ network, name string }

// pubTable is the immutable view the listeners read: the endpoints by
// name, how to reach the other hosts' relays, and the gateways.
type pubTable struct {
	targets map[pubNameKey][]pubTarget
	// local maps this host's endpoint addresses, per network, to their
	// names and aliases; the relay serves only these.
	local map[pubNameKey][]netip.Addr
	// relays are the other hosts' relay addresses by host name; peerIPs
	// the addresses the relay accepts connections from.
	relays  map[string]netip.AddrPort
	peerIPs map[netip.Addr]bool
	// tunnelRelays are the other hosts' relays inside WireGuard, at their
	// tunnel addresses, by host name; tunnelPeers the tunnel addresses the
	// tunnel relay accepts connections from. Only peers with a key.
	tunnelRelays map[string]netip.AddrPort
	tunnelPeers  map[netip.Addr]bool
	// inner dials inside WireGuard (the crypto device's inner stack); nil
	// on a host without a key.
	inner innerDialer
	// dialers are the gateways of the networks this host carries.
	dialers map[string]gatewayDialer
	// ingress are the ingress publishes by Key, which the relay serves.
	ingress map[string]config.Publish
	// sealed are the encrypted networks: the plain relay is plain TCP on
	// the underlay, so it neither carries nor serves their traffic; they
	// are relayed inside WireGuard only (tunnelRelays).
	sealed map[string]bool
	// self is this host's underlay address, the relay dials' source.
	self netip.Addr
}

// pubListener is one publish listening on this host.
type pubListener struct {
	def   config.Publish
	addr  netip.AddrPort
	ln    net.Listener   // tcp
	pc    net.PacketConn // udp
	stats *pubCounters
	rr    atomic.Uint64
	wg    sync.WaitGroup
	pub   *publisher
}

// close stops accepting and waits for the accept loop; open connections
// run on until either side ends them.
func (pl *pubListener) close() {
	if pl.ln != nil {
		pl.ln.Close()
	}
	if pl.pc != nil {
		pl.pc.Close()
	}
	pl.wg.Wait()
}

// live returns the targets a new connection may go to, in address order.
func (pl *pubListener) live(t *pubTable) []pubTarget {
	var out []pubTarget
	for _, x := range t.targets[pubNameKey{pl.def.Network, pl.def.Target}] {
		if pl.def.Mode == config.ModeHost && x.host != "" {
			continue
		}
		if x.host != "" && !t.relayOf(pl.def.Network, x.host).IsValid() {
			continue
		}
		out = append(out, x)
	}
	return out
}

// candidates returns the live targets, starting at the next in
// round-robin order: each call takes a turn.
func (pl *pubListener) candidates(t *pubTable) []pubTarget {
	out := pl.live(t)
	if len(out) == 0 {
		return nil
	}
	start := int(pl.rr.Add(1) % uint64(len(out)))
	return append(out[start:], out[:start]...)
}

func (pl *pubListener) routineAcceptTCP() {
	defer pl.wg.Done()
	for {
		c, err := pl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off a little.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if pl.stats.Active.Add(1) > maxPubConns {
			pl.stats.Active.Add(-1)
			pl.stats.Refused.Add(1)
			c.Close()
			continue
		}
		pl.stats.Accepted.Add(1)
		go pl.serveTCP(c)
	}
}

// serveTCP connects c to a target and proxies until both sides end.
func (pl *pubListener) serveTCP(c net.Conn) {
	defer pl.stats.Active.Add(-1)
	defer pl.pub.crash.Recover("publish", closer(c))
	up := pl.dialTarget(config.ProtoTCP)
	if up == nil {
		c.Close()
		return
	}
	in, out := relay.Pipe(c, up, 0)
	pl.stats.BytesIn.Add(uint64(in))
	pl.stats.BytesOut.Add(uint64(out))
}

// dialTarget connects to one of the publish's targets, trying the next
// on failure, or returns nil.
func (pl *pubListener) dialTarget(proto string) net.Conn {
	t := pl.pub.table.Load()
	cands := pl.candidates(t)
	for i, x := range cands {
		if i == pubDialTries {
			break
		}
		var up net.Conn
		var err error
		if x.host == "" {
			up, err = dialLocal(t, pl.def.Network, proto, netip.AddrPortFrom(x.ip, pl.def.TargetPort))
		} else {
			up, err = dialRelay(t, x.host, &pl.def, x.ip)
			if err == nil {
				pl.stats.relayed.Add(1)
				if proto == config.ProtoUDP {
					up = &framedConn{Conn: up}
				}
			}
		}
		if err == nil {
			return up
		}
		pl.stats.dialErrors.Add(1)
		pl.pub.l.Debug("published port cannot reach a target", "port", pl.def.Key(), "target", x.ip, "peer", x.host, "error", err)
	}
	if len(cands) == 0 {
		pl.stats.dialErrors.Add(1)
	}
	return nil
}

// dialLocal connects to a local endpoint through its network's gateway.
func dialLocal(t *pubTable, network, proto string, to netip.AddrPort) (net.Conn, error) {
	d := t.dialers[network]
	if d == nil {
		return nil, errors.New("the network has no gateway on this host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), pubDialTimeout)
	defer cancel()
	return d.DialContext(ctx, proto, to.String())
}

// publisher owns this host's published-port listeners and relay.
type publisher struct {
	l       *slog.Logger
	table   atomic.Pointer[pubTable]
	crash   safe.Reporter // recovers a connection's panic, closing it
	refused *tally.Counts // the engine's refusals: the relay's are counted there

	// guarded by Engine.mu
	active map[string]*pubListener // by listen address and Key
	stats  map[string]*pubCounters // by Key, kept across re-listens
	errs   map[string]string       // why a publish is not listening, by Key
	relay  *relayServer            // plain, on the underlay
	tunnel *relayServer            // inside WireGuard, for encrypted networks
}

func newPublisher(l *slog.Logger, crash safe.Reporter, refused *tally.Counts) *publisher {
	p := &publisher{
		l:       l,
		crash:   crash,
		refused: refused,
		active:  make(map[string]*pubListener),
		stats:   make(map[string]*pubCounters),
		errs:    make(map[string]string),
	}
	p.table.Store(&pubTable{})
	return p
}

// closer returns c's Close as a func, for safe.Reporter.Recover.
func closer(c io.Closer) func() { return func() { c.Close() } }
