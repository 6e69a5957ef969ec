package tunnel

// The relay carries an ingress publish's connection from the host that
// accepted it to the host that runs the chosen endpoint. There are two,
// with one protocol and one set of checks:
//
//   - the plain relay, for plain networks: TCP at the host's underlay
//     address and VXLAN port number, accepting connections from the
//     peers' underlay addresses only. It carries the network's traffic in
//     the clear, so it neither serves nor dials an encrypted network.
//   - the tunnel relay, for encrypted networks: TCP on the inner stack
//     (netstack.InnerStack) at the host's tunnel address and the same
//     port number, so inside WireGuard. It accepts connections from the
//     peers' tunnel addresses only; WireGuard's allowed-ips bind such a
//     source to the peer's key, so the source authenticates the peer.
//
// A relayed connection opens with a fixed header:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       magic "vxpr"                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   version 1   |  proto (6/17) |       published port          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     target IPv4 address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// and the relay answers one byte, 0 when it reached the target, before
// the stream is proxied. The relay forwards only to what a publish
// already exposes: the target must be an endpoint on this host named or
// aliased by the ingress publish of that protocol and port, and the port
// is the publish's own target port. So a relay can reach nothing the
// published port itself cannot.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/relay"
)

const (
	relayMagic     = "vxpr"
	relayVersion   = 1
	relayHeaderLen = 12
	// relayHeaderWait bounds how long a relay waits for the header.
	relayHeaderWait = 5 * time.Second
	// maxRelayConns bounds the relayed connections a host serves at once.
	maxRelayConns = 4 * maxPubConns
)

// Relay answers.
const (
	relayOK      = 0
	relayRefused = 1
	relayNoReach = 2
)

// relayHeader is the decoded opening of a relayed connection.
type relayHeader struct {
	proto  byte // 6 tcp, 17 udp
	port   uint16
	target netip.Addr
}

// errRelayHeader is returned for a header that is not a relay header.
var errRelayHeader = errors.New("not a relay header")

func (h *relayHeader) encode(b []byte) {
	copy(b, relayMagic)
	b[4], b[5] = relayVersion, h.proto
	binary.BigEndian.PutUint16(b[6:], h.port)
	a := h.target.As4()
	copy(b[8:12], a[:])
}

func (h *relayHeader) decode(b []byte) error {
	if len(b) < relayHeaderLen || string(b[:4]) != relayMagic || b[4] != relayVersion || (b[5] != 6 && b[5] != 17) {
		return errRelayHeader
	}
	h.proto, h.port = b[5], binary.BigEndian.Uint16(b[6:])
	h.target = netip.AddrFrom4([4]byte(b[8:12]))
	return nil
}

func protoNumber(proto string) byte {
	if proto == config.ProtoUDP {
		return 17
	}
	return 6
}

func protoName(n byte) string {
	if n == 17 {
		return config.ProtoUDP
	}
	return config.ProtoTCP
}

// relayOf is the relay that carries network's connections to host: the
// tunnel relay for an encrypted network (none without an inner stack),
// else the plain one. Invalid when there is none.
func (t *pubTable) relayOf(network, host string) netip.AddrPort {
	if t.sealed[network] {
		if t.inner == nil {
			return netip.AddrPort{}
		}
		return t.tunnelRelays[host]
	}
	return t.relays[host]
}

// dialRelay opens a relayed connection to target, an endpoint of def's
// network on host, through host's relay for that network (relayOf).
func dialRelay(t *pubTable, host string, def *config.Publish, target netip.Addr) (net.Conn, error) {
	to := t.relayOf(def.Network, host)
	if !to.IsValid() {
		return nil, fmt.Errorf("no relay to %s for network %s", host, def.Network)
	}
	var c net.Conn
	var err error
	if t.sealed[def.Network] {
		ctx, cancel := context.WithTimeout(context.Background(), pubDialTimeout)
		c, err = t.inner.DialTCP(ctx, to)
		cancel()
	} else {
		d := net.Dialer{Timeout: pubDialTimeout}
		if t.self.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: t.self.AsSlice()}
		}
		c, err = d.Dial("tcp", to.String())
	}
	if err != nil {
		return nil, err
	}
	return relayOpen(c, to, def, target)
}

// relayOpen sends the header on c, a new connection to the relay at to,
// and waits for the relay's answer.
func relayOpen(c net.Conn, to netip.AddrPort, def *config.Publish, target netip.Addr) (net.Conn, error) {
	var b [relayHeaderLen]byte
	h := relayHeader{proto: protoNumber(def.Proto), port: def.Port, target: target}
	h.encode(b[:])
	c.SetDeadline(time.Now().Add(pubDialTimeout))
	if _, err := c.Write(b[:]); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, b[:1]); err != nil {
		c.Close()
		return nil, fmt.Errorf("relay %s did not answer: %w", to, err)
	}
	if b[0] != relayOK {
		c.Close()
		return nil, fmt.Errorf("relay %s refused (%d)", to, b[0])
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// relayServer accepts relayed connections from the peers.
type relayServer struct {
	pub  *publisher
	ln   net.Listener
	addr netip.AddrPort
	// tunnel is set for the tunnel relay: it listens on the inner stack,
	// accepts the peers' tunnel addresses and serves encrypted networks.
	tunnel bool
	wg     sync.WaitGroup
	// done is closed by close: a closed gonet listener does not return
	// net.ErrClosed, so the accept loop learns its end here.
	done chan struct{}

	active atomic.Int64 // relayed connections open now, for the bound
}

// newRelayServer starts serving relayed connections accepted on ln.
func newRelayServer(pub *publisher, ln net.Listener, addr netip.AddrPort, tunnel bool, name string) *relayServer {
	r := &relayServer{pub: pub, ln: ln, addr: addr, tunnel: tunnel, done: make(chan struct{})}
	r.wg.Add(1)
	pub.crash.Go(name, r.routineAccept)
	return r
}

func (r *relayServer) close() {
	close(r.done)
	r.ln.Close()
	r.wg.Wait()
}

func (r *relayServer) routineAccept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if r.active.Add(1) > maxRelayConns {
			r.active.Add(-1)
			r.pub.refused.Add(refusedRelayBusy)
			c.Close()
			continue
		}
		go r.serve(c)
	}
}

// serve checks a relayed connection's header and proxies it to its target.
func (r *relayServer) serve(c net.Conn) {
	defer r.active.Add(-1)
	defer r.pub.crash.Recover("publish", closer(c))
	t := r.pub.table.Load()
	from, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	peers := t.peerIPs
	if r.tunnel {
		peers = t.tunnelPeers
	}
	if !peers[from.Addr().Unmap()] {
		r.pub.refused.Add(refusedRelayPeer)
		c.Close()
		return
	}
	var b [relayHeaderLen]byte
	c.SetReadDeadline(time.Now().Add(relayHeaderWait))
	var h relayHeader
	if _, err := io.ReadFull(c, b[:]); err != nil || h.decode(b[:]) != nil {
		r.pub.refused.Add(refusedRelayHeader)
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	def, ok := t.relayTarget(&h, r.tunnel)
	if !ok {
		r.pub.refused.Add(refusedRelayTarget)
		c.Write([]byte{relayRefused})
		c.Close()
		return
	}
	up, err := dialLocal(t, def.Network, def.Proto, netip.AddrPortFrom(h.target, def.TargetPort))
	if err != nil {
		r.pub.refused.Add(refusedRelayUnreachable)
		c.Write([]byte{relayNoReach})
		c.Close()
		return
	}
	if _, err := c.Write([]byte{relayOK}); err != nil {
		up.Close()
		c.Close()
		return
	}
	// The accepting host counts the connection and its bytes.
	if def.Proto == config.ProtoUDP {
		relay.PipeDatagrams(&framedConn{Conn: c}, up, pubUDPIdle)
	} else {
		relay.Pipe(c, up, 0)
	}
}

// relayTarget returns the ingress publish h names, when h's target is an
// endpoint of this host that the publish forwards to. An encrypted
// network's endpoint is served only when the request came inside
// WireGuard (viaTunnel), never on the plain relay.
func (t *pubTable) relayTarget(h *relayHeader, viaTunnel bool) (config.Publish, bool) {
	k := (&config.Publish{Proto: protoName(h.proto), Port: h.port}).Key()
	def, ok := t.ingress[k]
	if !ok || (t.sealed[def.Network] && !viaTunnel) {
		return config.Publish{}, false
	}
	return def, slices.Contains(t.local[pubNameKey{def.Network, def.Target}], h.target)
}
