package netstack

// Egress policy: destinations no container may reach through the NAT,
// whatever the configuration says. The NAT dials from the daemon's own
// network namespace, so without a policy a container borrows the host's
// identity: it reaches the host's own services, the peers (which trust the
// host's underlay address, so a forged VXLAN datagram to a peer's VXLAN
// port lands in any network there) and the cloud metadata service.
//
// A destination is refused when it is one of the built-in classes below,
// or when a rule of the gateway's EgressPolicy matches it. The policy is
// shared by every gateway of a daemon and swapped as a whole on reload;
// the engine fills it with the host's own addresses, the peers, the
// overlay's ports and the operator's list (see tunnel/gateway.go).
//
// Refusals are answered at once: a SYN gets a RST and a UDP datagram an
// ICMP port unreachable, both from the refused address, and an echo
// request an ICMP "administratively prohibited" from the gateway, so the
// container sees "connection refused" instead of a timeout. Destinations that the
// container's kernel never routes to a gateway (0/8, loopback) and group
// addresses (multicast, broadcast; RFC 1812 forbids ICMP errors for them)
// are dropped by the frame filter instead. Each refusal is counted under
// GatewayStats.DropsEgressDenied.

import (
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
)

// Proto selects the transport protocols an EgressRule applies to. Its
// values are the IP protocol numbers.
type Proto uint8

// Transport protocols of egress rules.
const (
	ProtoAny Proto = 0  // TCP and UDP, and ICMP echo when the rule has no port
	ProtoTCP Proto = 6  // TCP only
	ProtoUDP Proto = 17 // UDP only
)

// EgressRule refuses egress to the addresses of Prefix, on Port (0: every
// port), for Proto (ProtoAny: TCP and UDP).
type EgressRule struct {
	Prefix netip.Prefix
	Port   uint16
	Proto  Proto
}

// String formats r as the config file spells it: [tcp:|udp:]CIDR[:PORT].
func (r EgressRule) String() string {
	s := r.Prefix.String()
	if r.Port != 0 {
		s += ":" + strconv.Itoa(int(r.Port))
	}
	switch r.Proto {
	case ProtoTCP:
		s = "tcp:" + s
	case ProtoUDP:
		s = "udp:" + s
	}
	return s
}

// matches reports whether r refuses proto to port (the address is checked
// by the caller).
func (r EgressRule) matches(proto Proto, port uint16) bool {
	return (r.Proto == ProtoAny || r.Proto == proto) && (r.Port == 0 || r.Port == port)
}

// Built-in egress refusals, applied whatever the policy holds.
var builtinDeny = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network": the host itself
	netip.MustParsePrefix("127.0.0.0/8"),    // the host's loopback services
	netip.MustParsePrefix("169.254.0.0/16"), // link-local: cloud metadata services
	netip.MustParsePrefix("224.0.0.0/4"),    // multicast
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, limited broadcast
}

// EgressPolicy is a deny list for egress, shared by gateways and replaced
// as a whole with Set. Its methods are safe for concurrent use; a nil
// policy refuses only the built-in classes.
type EgressPolicy struct {
	t atomic.Pointer[denyTable]
}

// denyTable is one immutable version of a policy: host routes in a map,
// wider prefixes in a list, both checked once per new flow.
type denyTable struct {
	rules []EgressRule
	hosts map[netip.Addr][]EgressRule
	nets  []EgressRule
}

// NewEgressPolicy returns a policy holding rules; see Set.
func NewEgressPolicy(rules []EgressRule) (*EgressPolicy, error) {
	p := new(EgressPolicy)
	if err := p.Set(rules); err != nil {
		return nil, err
	}
	return p, nil
}

// Set replaces the policy's rules. Every prefix must be IPv4 (egress is
// IPv4 only); on error the old rules stay. Flows already open are not
// affected; new flows see the new rules at once.
func (p *EgressPolicy) Set(rules []EgressRule) error {
	t := &denyTable{rules: append([]EgressRule(nil), rules...), hosts: make(map[netip.Addr][]EgressRule)}
	for _, r := range rules {
		if !r.Prefix.IsValid() || !r.Prefix.Addr().Is4() {
			return fmt.Errorf("egress rule %s: not an ipv4 prefix", r)
		}
		if r.Proto != ProtoAny && r.Proto != ProtoTCP && r.Proto != ProtoUDP {
			return fmt.Errorf("egress rule %s: protocol %d is neither tcp nor udp", r, r.Proto)
		}
		r.Prefix = r.Prefix.Masked()
		if r.Prefix.IsSingleIP() {
			t.hosts[r.Prefix.Addr()] = append(t.hosts[r.Prefix.Addr()], r)
		} else {
			t.nets = append(t.nets, r)
		}
	}
	p.t.Store(t)
	return nil
}

// Rules returns a copy of the policy's rules, in the order Set got them.
func (p *EgressPolicy) Rules() []EgressRule {
	if p == nil {
		return nil
	}
	if t := p.t.Load(); t != nil {
		return append([]EgressRule(nil), t.rules...)
	}
	return nil
}

// Denies reports whether egress of proto (ProtoTCP, ProtoUDP, or ProtoICMP
// with port 0) to dst is refused, by the built-in classes or by a rule.
func (p *EgressPolicy) Denies(proto Proto, dst netip.AddrPort) bool {
	a := dst.Addr().Unmap()
	if !a.Is4() {
		return true
	}
	for _, b := range builtinDeny {
		if b.Contains(a) {
			return true
		}
	}
	if p == nil {
		return false
	}
	t := p.t.Load()
	if t == nil {
		return false
	}
	for _, r := range t.hosts[a] {
		if r.matches(proto, dst.Port()) {
			return true
		}
	}
	for _, r := range t.nets {
		if r.Prefix.Contains(a) && r.matches(proto, dst.Port()) {
			return true
		}
	}
	return false
}
