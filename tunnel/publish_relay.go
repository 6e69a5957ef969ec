package tunnel

// The relay carries an ingress publish's connection from the host that
// accepted it to the host that runs the chosen endpoint. It listens on TCP
// at the host's underlay address and VXLAN port number, and accepts
// connections from the peers' addresses only. A relayed connection opens
// with a fixed header:
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

// dialRelay opens a relayed connection to target through the relay at to.
func dialRelay(t *pubTable, to netip.AddrPort, def *config.Publish, target netip.Addr) (net.Conn, error) {
	d := net.Dialer{Timeout: pubDialTimeout}
	if t.self.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: t.self.AsSlice()}
	}
	c, err := d.Dial("tcp", to.String())
	if err != nil {
		return nil, err
	}
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
	wg   sync.WaitGroup

	active atomic.Int64 // relayed connections open now, for the bound
}

func (r *relayServer) close() {
	r.ln.Close()
	r.wg.Wait()
}

func (r *relayServer) routineAccept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
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
	if !t.peerIPs[from.Addr().Unmap()] {
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
	def, ok := t.relayTarget(&h)
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
// endpoint of this host that the publish forwards to.
func (t *pubTable) relayTarget(h *relayHeader) (config.Publish, bool) {
	k := (&config.Publish{Proto: protoName(h.proto), Port: h.port}).Key()
	def, ok := t.ingress[k]
	if !ok || t.sealed[def.Network] {
		return config.Publish{}, false
	}
	return def, slices.Contains(t.local[pubNameKey{def.Network, def.Target}], h.target)
}
