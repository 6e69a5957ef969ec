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
	// allowed is the set of addresses let in; nil lets everyone in.
	allowed atomic.Pointer[map[netip.Addr]bool]
	refused func()
	// local is the address streams are dialled from (Config.BindAddr);
	// invalid: the kernel picks, as memberlist does.
	local netip.Addr
	// tunneled, when set, reports the addresses the inner transport
	// reaches inside WireGuard, which are dialled through it.
	tunneled func(addr string) bool

	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{} // closed when Shutdown begins
	stopped chan struct{} // closed when the inner transport has stopped
	wg      sync.WaitGroup
	stop    sync.Once
	stopErr error
}

var _ memberlist.NodeAwareTransport = (*filterTransport)(nil)

// newFilterTransport wraps inner and starts forwarding what passes the
// gate. refused is called once per packet or connection turned away.
func newFilterTransport(inner memberlist.NodeAwareTransport, refused func(), crash safe.Reporter) *filterTransport {
	t := &filterTransport{
		NodeAwareTransport: inner,
		refused:            refused,
		packets:            make(chan *memberlist.Packet),
		streams:            make(chan net.Conn),
		done:               make(chan struct{}),
		stopped:            make(chan struct{}),
	}
	t.wg.Add(2)
	crash.Go("gossip packets", func() { t.routinePackets(inner.PacketCh()) })
	crash.Go("gossip streams", func() { t.routineStreams(inner.StreamCh()) })
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
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	default:
		return t.allowed.Load() == nil
	}
	return t.admitsIP(ip)
}

// admitsIP reports whether ip is let in.
func (t *filterTransport) admitsIP(ip net.IP) bool {
	m := t.allowed.Load()
	if m == nil {
		return true
	}
	addr, ok := netip.AddrFromSlice(ip)
	return ok && (*m)[addr.Unmap()]
}

// aliveGate is the Cluster seen as memberlist's AliveDelegate: a member
// (one holding the secret) cannot introduce a node at an address that is
// not a configured peer either.
type aliveGate Cluster

var _ memberlist.AliveDelegate = (*aliveGate)(nil)

// NotifyAlive implements memberlist.AliveDelegate.
func (g *aliveGate) NotifyAlive(n *memberlist.Node) error {
	c := (*Cluster)(g)
	if c.transport.admitsIP(n.Addr) {
		return nil
	}
	c.refused.Add(RefusedStranger)
	return fmt.Errorf("gossip: node %s at %s is not a configured peer", n.Name, n.Addr)
}

// routinePackets forwards admitted packets until Shutdown. After done it
// keeps draining in, so that the inner transport's listeners never block
// while it shuts down, until stopped.
func (t *filterTransport) routinePackets(in <-chan *memberlist.Packet) {
	defer t.wg.Done()
	for {
		select {
		case <-t.stopped:
			return
		case p := <-in:
			if !t.admits(p.From) {
				t.refused()
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
			}
		}
	}
}

func (t *filterTransport) routineStreams(in <-chan net.Conn) {
	defer t.wg.Done()
	for {
		select {
		case <-t.stopped:
			return
		case c := <-in:
			if !t.admits(c.RemoteAddr()) {
				t.refused()
				c.Close()
				continue
			}
			select {
			case t.streams <- c:
			case <-t.done:
				c.Close()
			}
		}
	}
}

// PacketCh implements memberlist.Transport.
func (t *filterTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh implements memberlist.Transport.
func (t *filterTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown implements memberlist.Transport. It is idempotent.
func (t *filterTransport) Shutdown() error {
	t.stop.Do(func() {
		close(t.done)
		t.stopErr = t.NodeAwareTransport.Shutdown()
		close(t.stopped)
		t.wg.Wait()
	})
	return t.stopErr
}
