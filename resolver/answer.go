package resolver

import (
	"bytes"
	"net/netip"
	"unsafe"
)

// answer handles the query in msg, received over tr, and appends the reply
// to out[:0]. It returns a nil reply when the query is dropped, and
// fwd = true when the query is for an upstream (q then holds it and no
// reply is built). answer never blocks.
func (s *Server) answer(msg, out []byte, tr transport, client netip.Addr, q *query) (resp []byte, res result, fwd bool) {
	var r reply
	v := parseQuery(msg, q)
	q.client = client
	switch v {
	case verdictDrop:
		return nil, resDropped, false
	case verdictFormErr:
		r.start(out, msg, q, maxMsgSize, false)
		q.edns = false // the OPT record may be what was wrong
		return r.finish(q, 0, rcodeFormErr), resFormErr, false
	case verdictNotImp:
		q.edns = false
		r.start(out, msg, q, maxMsgSize, false)
		return r.finish(q, 0, rcodeNotImp), resNotImp, false
	}
	limit := maxMsgSize
	if tr == udp {
		limit = udpLimit(q)
	}
	r.start(out, msg, q, limit, true)
	if q.edns && q.version != 0 {
		return r.finish(q, 0, rcodeBadVers), resFormErr, false
	}
	if q.qclass != classINET && q.qclass != classANY {
		return r.finish(q, 0, rcodeNotImp), resNotImp, false
	}
	if addr, ok := parseReverse(q.key()); ok && s.cfg.Subnet.Contains(addr) {
		res = s.answerPTR(&r, q, addr)
	} else {
		var addrs []netip.Addr
		switch addrs, res = s.lookup(q); res {
		case resForwarded:
			if s.forwarding() {
				return nil, resForwarded, true
			}
			return r.finish(q, 0, rcodeRefused), resRefused, false
		case resNoError:
			res = s.answerA(&r, q, addrs)
		}
	}
	rcode := rcodeSuccess
	if res == resNXDomain {
		rcode = rcodeNXDomain
	}
	return r.finish(q, s.flags(flagAA), rcode), res, false
}

// flags adds RA to f when this server forwards (recursion available).
func (s *Server) flags(f uint16) uint16 {
	if s.forwarding() {
		f |= flagRA
	}
	return f
}

// udpLimit is the largest UDP answer q's sender accepts: 512 bytes without
// EDNS0, else its advertised size clamped to [512, maxUDPSize].
func udpLimit(q *query) int {
	if !q.edns {
		return minUDPSize
	}
	return min(max(int(q.udpSize), minUDPSize), maxUDPSize)
}

// lookup classifies q's name: resNoError with the addresses of a local
// name, resNXDomain for names this server owns that do not exist,
// resNoData for the network's own apex, and resForwarded for other names.
// Single-label names are local: a bare name is never sent upstream.
func (s *Server) lookup(q *query) ([]netip.Addr, result) {
	name := q.key()
	if len(name) == 0 {
		return nil, resForwarded // the root
	}
	if q.plain {
		if a := s.names.Lookup(s.network, transient(name)); len(a) > 0 {
			return a, resNoError
		}
	}
	if len(s.domain) > 0 {
		if bytes.Equal(name, s.domain) {
			return nil, resNoData
		}
		if host, ok := cutDomain(name, s.domain); ok {
			if q.plain {
				if a := s.names.Lookup(s.network, transient(host)); len(a) > 0 {
					return a, resNoError
				}
			}
			return nil, resNXDomain
		}
	}
	if q.labels == 1 {
		return nil, resNXDomain
	}
	iso := s.isolated.Load()
	for i, d := range iso.wire {
		host, ok := cutDomain(name, d)
		if ok && q.plain && s.shares(q.client, iso.names[i]) {
			if a := s.names.Lookup(iso.names[i], transient(host)); len(a) > 0 {
				return a, resNoError
			}
		}
		if ok || bytes.Equal(name, d) {
			return nil, resNXDomain
		}
	}
	return nil, resForwarded
}

// transient returns b as a string without copying it, for a call to
// Names.Lookup, which does not keep its name (see Names): a copy per query
// was the one allocation of a local answer. b must not change during the
// call.
func transient(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// cutDomain returns name without ".domain" if name is under domain.
func cutDomain(name, domain []byte) ([]byte, bool) {
	n := len(name) - len(domain) - 1
	if n <= 0 || name[n] != '.' || !bytes.Equal(name[n+1:], domain) {
		return nil, false
	}
	return name[:n], true
}

// answerA writes the IPv4 addresses of a known name, rotated by the
// round-robin counter, or nothing (NODATA) for other query types.
func (s *Server) answerA(r *reply, q *query, addrs []netip.Addr) result {
	if q.qtype != typeA && q.qtype != typeANY {
		return resNoData
	}
	n := uint32(len(addrs))
	start := uint32(0)
	if n > 1 {
		start = s.rr.Add(1) % n // one address needs no turn, nor a shared atomic
	}
	for i := range n {
		a := addrs[(start+i)%n].Unmap()
		if !a.Is4() {
			continue
		}
		if !r.fits(16) {
			break
		}
		r.rrHeader(typeA, s.cfg.TTL, 4)
		v := a.As4()
		r.b = append(r.b, v[:]...)
	}
	if r.an == 0 && !r.tc {
		return resNoData // only non-IPv4 addresses
	}
	return resNoError
}

// answerPTR answers a reverse query for addr, an address in the subnet,
// with NAME.NETWORK. for each name Reverse gives.
func (s *Server) answerPTR(r *reply, q *query, addr netip.Addr) result {
	names := s.names.Reverse(s.network, addr)
	if len(names) == 0 {
		return resNXDomain
	}
	if q.qtype != typePTR && q.qtype != typeANY {
		return resNoData
	}
	for _, name := range names {
		mark := len(r.b)
		r.rrHeader(typePTR, s.cfg.TTL, 0)
		b, ok := appendName(r.b, name, s.network)
		if !ok || len(b) > r.limit {
			r.b, r.an = r.b[:mark], r.an-1
			if ok {
				r.tc = true
				break
			}
			continue // a name that is not a valid domain name
		}
		rdlen := len(b) - mark - 12
		b[mark+10], b[mark+11] = byte(rdlen>>8), byte(rdlen)
		r.b = b
	}
	if r.an == 0 && !r.tc {
		return resNXDomain
	}
	return resNoError
}

// parseReverse reads D.C.B.A.in-addr.arpa as A.B.C.D (RFC 1035 §3.5).
func parseReverse(name []byte) (netip.Addr, bool) {
	rest, ok := bytes.CutSuffix(name, []byte(".in-addr.arpa"))
	if !ok {
		return netip.Addr{}, false
	}
	var a [4]byte
	for i := 3; i >= 0; i-- {
		var label []byte
		if i == 0 {
			label = rest
		} else if label, rest, ok = bytes.Cut(rest, []byte{'.'}); !ok {
			return netip.Addr{}, false
		}
		v, ok := parseOctet(label)
		if !ok {
			return netip.Addr{}, false
		}
		a[i] = v
	}
	return netip.AddrFrom4(a), true
}

// parseOctet parses a decimal 0…255 without leading zeros.
func parseOctet(b []byte) (byte, bool) {
	if len(b) == 0 || len(b) > 3 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	v := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return byte(v), v <= 255
}
