package crypto

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/encap"
	"golang.zx2c4.com/wireguard/conn"
)

// newBind returns the bind the device gives wireguard-go on Linux.
func newBind(local netip.Addr) conn.Bind {
	return &udpBind{local: local}
}

// maxEndpoints bounds the endpoints a receiver keeps for reuse. Anyone on
// the underlay can send from many ports; past the bound the cache starts
// afresh rather than grow.
const maxEndpoints = 1024

// udpBind is wireguard-go's conn.Bind on the data path's own socket: one
// IPv4 UDP socket (encap.StdConn, recvmmsg and sendmmsg with UDP GRO and
// GSO, as the plain VXLAN path uses), bound to the host's underlay address
// when Config.ListenAddr names one.
//
// wireguard-go's StdNetBind makes the same system calls through
// syscall.Syscall. The first such call after the process had nothing to
// run wakes the Go runtime's sysmon thread, which then polls every 20 µs
// for a millisecond or more: with one encrypted TCP stream, about 5 % of the
// two daemons' samples and half of their context switches. encap.StdConn
// enters the kernel with raw system calls, which the runtime does not
// track. Binding the address also takes the place of filtering by
// IP_PKTINFO what StdNetBind received on every address of the port.
//
// The underlay is IPv4, and so are the endpoints: ParseEndpoint refuses
// others. An endpoint carries no source address: the socket has one, or the
// kernel's route chooses it. No firewall mark: wireguard-go sets one only
// when told fwmark, which vxwire never says and its read-only UAPI socket
// refuses. Open and Close are serialised; Send may run concurrently with
// everything.
type udpBind struct {
	local netip.Addr // the address to bind; invalid or unspecified: any
	probe pathProbe

	mu   sync.Mutex // held by Open and Close
	sock atomic.Pointer[encap.StdConn]
}

// errNoMark is SetMark's answer to a mark other than 0.
var errNoMark = errors.New("wireguard fwmark is not supported")

var _ conn.Bind = (*udpBind)(nil)

// udpEndpoint is a peer's address. It never changes once made, so one
// value serves every packet from that address and every peer sent to it.
type udpEndpoint struct{ ap netip.AddrPort }

var _ conn.Endpoint = (*udpEndpoint)(nil)

// ClearSrc implements conn.Endpoint; there is no source to clear.
func (*udpEndpoint) ClearSrc() {}

// SrcToString implements conn.Endpoint.
func (*udpEndpoint) SrcToString() string { return "" }

// SrcIP implements conn.Endpoint.
func (*udpEndpoint) SrcIP() netip.Addr { return netip.Addr{} }

// DstToString implements conn.Endpoint.
func (e *udpEndpoint) DstToString() string { return e.ap.String() }

// DstIP implements conn.Endpoint.
func (e *udpEndpoint) DstIP() netip.Addr { return e.ap.Addr() }

// DstToBytes implements conn.Endpoint: the address and port, for the
// cookie of a handshake under load.
func (e *udpEndpoint) DstToBytes() []byte {
	b, _ := e.ap.MarshalBinary()
	return b
}

// Open implements conn.Bind: it binds local:port (port 0 picks one) and
// returns the one function that receives from it.
func (b *udpBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sock.Load() != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	local := b.local
	if !local.IsValid() {
		local = netip.IPv4Unspecified()
	}
	c, err := encap.Listen(netip.AddrPortFrom(local, port), conn.IdealBatchSize)
	if err != nil {
		return nil, 0, err
	}
	b.sock.Store(c)
	r := &udpReceiver{
		sock: c,
		aps:  make([]netip.AddrPort, c.BatchSize()),
		eps:  make(map[netip.AddrPort]*udpEndpoint),
	}
	return []conn.ReceiveFunc{r.receive}, c.LocalAddr().Port(), nil
}

// Close implements conn.Bind. The receive function returns net.ErrClosed
// afterwards, and Send too until the next Open.
func (b *udpBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := b.sock.Swap(nil); c != nil {
		return c.Close()
	}
	return nil
}

// SetMark implements conn.Bind: 0, no mark, is all it takes (errNoMark).
func (*udpBind) SetMark(mark uint32) error {
	if mark != 0 {
		return errNoMark
	}
	return nil
}

// Send implements conn.Bind.
func (b *udpBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	return b.probe.send((*udpWriter)(b), bufs, ep, time.Now().UnixNano())
}

// udpWriter is a udpBind whose Send goes straight to the socket.
type udpWriter udpBind

func (w *udpWriter) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*udpEndpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	c := w.sock.Load()
	if c == nil {
		return net.ErrClosed
	}
	return c.Write(bufs, e.ap)
}

// ParseEndpoint implements conn.Bind: an IPv4 address and port, as in
// "198.18.0.2:51820".
func (*udpBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", s, err)
	}
	a := ap.Addr().Unmap()
	if !a.Is4() {
		return nil, fmt.Errorf("endpoint %q: %w: the underlay is IPv4", s, encap.ErrNotIPv4)
	}
	return &udpEndpoint{ap: netip.AddrPortFrom(a, ap.Port())}, nil
}

// BatchSize implements conn.Bind.
func (*udpBind) BatchSize() int { return conn.IdealBatchSize }

// udpReceiver is the receive function of one socket. wireguard-go calls it
// from one goroutine, which owns its scratch and its endpoints.
type udpReceiver struct {
	sock *encap.StdConn
	aps  []netip.AddrPort
	eps  map[netip.AddrPort]*udpEndpoint
	last *udpEndpoint // the previous datagram's: a GRO batch has one sender
}

func (r *udpReceiver) receive(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	bufs = bufs[:min(len(bufs), len(r.aps), len(eps))]
	n, err := r.sock.Read(bufs, sizes, r.aps[:len(bufs)])
	for i := 0; i < n; i++ {
		eps[i] = r.endpoint(r.aps[i])
	}
	return n, err
}

// endpoint returns the endpoint of ap, made once and then reused, so that
// receiving allocates nothing in steady state.
func (r *udpReceiver) endpoint(ap netip.AddrPort) *udpEndpoint {
	if r.last != nil && r.last.ap == ap {
		return r.last
	}
	if e, ok := r.eps[ap]; ok {
		r.last = e
		return e
	}
	if len(r.eps) >= maxEndpoints {
		clear(r.eps)
	}
	e := &udpEndpoint{ap: ap}
	r.eps[ap] = e
	r.last = e
	return e
}
