package gossip

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/vxwire/vxwire/internal/safe"
)

// filterTransport is memberlist's network transport with a gate in front:
// packets and connections from addresses that are not configured peers
// are dropped (connections closed) and counted before memberlist parses a
// byte of them. The gate can be changed while running (SetPeers), which
// memberlist's own CIDRsAllowed cannot.
type filterTransport struct {
	memberlist.NodeAwareTransport
	relay
	// allowed is the set of addresses let in; nil lets everyone in.
	allowed atomic.Pointer[map[netip.Addr]bool]
	refused func()
	// local is the address streams are dialled from (Config.BindAddr);
	// invalid: the kernel picks, as memberlist does.
	local netip.Addr
	// tunneled, when set, reports the addresses the inner transport
	// reaches inside WireGuard, which are dialled through it.
	tunneled func(addr string) bool
}

var _ memberlist.NodeAwareTransport = (*filterTransport)(nil)

// newFilterTransport wraps inner and starts forwarding what passes the
// gate. refused is called once per packet or connection turned away.
func newFilterTransport(inner memberlist.NodeAwareTransport, refused func(), crash safe.Reporter) *filterTransport {
	t := &filterTransport{NodeAwareTransport: inner, relay: newRelay(), refused: refused}
	t.gate(inner, "gossip", t.admits, refused, crash)
	return t
}

// DialTimeout dials a stream to addr from t.local.
func (t *filterTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout dials a stream to a from t.local, so that a host
// with several addresses reaches its peers' gates from the address they
// know (its gossip_address), not from whichever one routing picks.
func (t *filterTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if !t.local.IsValid() || t.tunneled != nil && t.tunneled(a.Addr) {
		return t.NodeAwareTransport.DialAddressTimeout(a, timeout)
	}
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: t.local.AsSlice()}}
	return d.Dial("tcp", a.Addr)
}

// setAllowed replaces the addresses let in; nil lets everyone in.
func (t *filterTransport) setAllowed(addrs []netip.Addr) {
	if addrs == nil {
		t.allowed.Store(nil)
		return
	}
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a.Unmap()] = true
	}
	t.allowed.Store(&m)
}

// admits reports whether a may talk to this host.
func (t *filterTransport) admits(a net.Addr) bool {
	addr, _ := addrOf(a)
	return t.admitsAddr(addr)
}

// admitsAddr reports whether a is let in.
func (t *filterTransport) admitsAddr(a netip.Addr) bool {
	m := t.allowed.Load()
	return m == nil || a.IsValid() && (*m)[a]
}

// aliveGate is the Cluster seen as memberlist's AliveDelegate: a member
// (one holding the secret) cannot introduce a node at an address that is
// not a configured peer either.
type aliveGate Cluster

var _ memberlist.AliveDelegate = (*aliveGate)(nil)

// NotifyAlive implements memberlist.AliveDelegate.
func (g *aliveGate) NotifyAlive(n *memberlist.Node) error {
	c := (*Cluster)(g)
	if a, _ := netip.AddrFromSlice(n.Addr); c.transport.admitsAddr(a.Unmap()) {
		return nil
	}
	c.refused.Add(RefusedStranger)
	return fmt.Errorf("gossip: node %s at %s is not a configured peer", n.Name, n.Addr)
}

// PacketCh implements memberlist.Transport.
func (t *filterTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh implements memberlist.Transport.
func (t *filterTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown implements memberlist.Transport. It is idempotent.
func (t *filterTransport) Shutdown() error {
	return t.shutdown(t.NodeAwareTransport.Shutdown)
}

// addrOf returns the IP address of a UDP or TCP address, unmapped.
func addrOf(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}

// relay is the half of a transport that hands memberlist what other
// transports received, through a gate: what fails keep is counted
// (refused) and dropped, a connection closed. filterTransport relays its
// inner transport, tunnelTransport the underlay and the tunnel.
type relay struct {
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{} // closed when shutdown begins
	stopped chan struct{} // closed when the relayed transports have stopped
	wg      sync.WaitGroup
	stop    sync.Once
	stopErr error
}

func newRelay() relay {
	return relay{
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

// gate starts relaying from's packets and streams that pass keep, in two
// goroutines named after name, until shutdown.
func (r *relay) gate(from memberlist.Transport, name string, keep func(net.Addr) bool, refused func(), crash safe.Reporter) {
	r.wg.Add(2)
	crash.Go(name+" packets", func() { r.routinePackets(from.PacketCh(), keep, refused) })
	crash.Go(name+" streams", func() { r.routineStreams(from.StreamCh(), keep, refused) })
}

// routinePackets relays the packets that pass keep until shutdown. After
// done it keeps draining in, so that the relayed transport's listeners
// never block while it shuts down, until stopped.
func (r *relay) routinePackets(in <-chan *memberlist.Packet, keep func(net.Addr) bool, refused func()) {
	defer r.wg.Done()
	for {
		select {
		case <-r.stopped:
			return
		case p := <-in:
			if !keep(p.From) {
				refused()
				continue
			}
			select {
			case r.packets <- p:
			case <-r.done:
			}
		}
	}
}

// routineStreams is routinePackets for connections.
func (r *relay) routineStreams(in <-chan net.Conn, keep func(net.Addr) bool, refused func()) {
	defer r.wg.Done()
	for {
		select {
		case <-r.stopped:
			return
		case c := <-in:
			if !keep(c.RemoteAddr()) {
				refused()
				c.Close()
				continue
			}
			select {
			case r.streams <- c:
			case <-r.done:
				c.Close()
			}
		}
	}
}

// shutdown stops the relay: it closes done, calls stop (which shuts the
// relayed transports down), closes stopped and waits for the relay's
// goroutines. It is idempotent; every call returns stop's error.
func (r *relay) shutdown(stop func() error) error {
	r.stop.Do(func() {
		close(r.done)
		r.stopErr = stop()
		close(r.stopped)
		r.wg.Wait()
	})
	return r.stopErr
}
