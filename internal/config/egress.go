package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// EgressRule is one entry of host.egress_deny: containers may not reach
// the addresses of Prefix through the gateway's NAT, on Port (0: every
// port), for Proto ("tcp" or "udp"; "": both). The entries are added to
// the defaults, which are always on: the host's own addresses, the peers'
// underlay and tunnel addresses, the overlay's subnets, loopback,
// link-local (cloud metadata), multicast and broadcast, and UDP to the
// VXLAN and WireGuard ports of any address.
type EgressRule struct {
	Prefix netip.Prefix
	Port   uint16
	Proto  string
}

// String formats r as the file spells it: [tcp:|udp:]CIDR[:PORT].
func (r EgressRule) String() string {
	s := r.Prefix.String()
	if r.Port != 0 {
		s += ":" + strconv.Itoa(int(r.Port))
	}
	if r.Proto != "" {
		s = r.Proto + ":" + s
	}
	return s
}

// ParseEgressRule parses an egress_deny entry: an IPv4 address or CIDR
// prefix, optionally followed by ":PORT" and preceded by "tcp:" or "udp:",
// such as "192.0.2.7", "10.0.0.0/8", "203.0.113.0/24:443" or
// "udp:0.0.0.0/0:8472". The error says what is wrong in the file's terms.
func ParseEgressRule(s string) (EgressRule, error) {
	var r EgressRule
	rest := s
	for _, p := range []string{"tcp", "udp"} {
		if strings.HasPrefix(rest, p+":") {
			r.Proto, rest = p, rest[len(p)+1:]
		}
	}
	addr, port, hasPort := strings.Cut(rest, ":")
	if hasPort && strings.ContainsFunc(addr, func(c rune) bool { return c >= 'a' && c <= 'z' }) && !strings.Contains(rest, "::") {
		return r, fmt.Errorf("%q names protocol %q; use tcp: or udp:, or no protocol for both", s, addr)
	}
	if strings.Count(rest, ":") > 1 || strings.Contains(rest, "[") {
		return r, fmt.Errorf("%q is not an IPv4 entry: egress is IPv4 only; use [tcp:|udp:]CIDR[:PORT], such as 10.0.0.0/8 or 203.0.113.7:443", s)
	}
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return r, fmt.Errorf("%q has port %q; use 1..65535, or leave the port out for every port", s, port)
		}
		r.Port = uint16(n)
	}
	if !strings.Contains(addr, "/") {
		addr += "/32"
	}
	p, err := netip.ParsePrefix(addr)
	switch {
	case err != nil || !p.Addr().Is4():
		return r, fmt.Errorf("%q is not an egress deny entry: use [tcp:|udp:]CIDR[:PORT], such as 10.0.0.0/8 or 203.0.113.7:443", s)
	case p.Masked() != p:
		return r, fmt.Errorf("%q has host bits set; use %s", s, EgressRule{p.Masked(), r.Port, r.Proto})
	}
	r.Prefix = p
	return r, nil
}

// egressDeny sets h.EgressDeny from an array of entry strings. An entry
// that fails its check is left out.
func (v *validator) egressDeny(field string, x any, h *Host) {
	elems, ok := v.array(field, x)
	if !ok {
		return
	}
	seen := map[EgressRule]int{}
	for i, e := range elems {
		ef := indexPath(field, i)
		s, ok := v.str(ef, e, true)
		if !ok {
			continue
		}
		r, err := ParseEgressRule(s)
		if err != nil {
			v.errorf(ef, "%v", err)
			continue
		}
		if j, dup := seen[r]; dup {
			v.errorf(ef, "%s is already listed as %s", r, indexPath(field, j))
			continue
		}
		seen[r] = i
		h.EgressDeny = append(h.EgressDeny, r)
	}
}
