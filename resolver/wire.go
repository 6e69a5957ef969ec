package resolver

import (
	"encoding/binary"
	"net/netip"
)

// DNS message layout (RFC 1035 §4.1):
//
//	                                1  1  1  1  1  1
//	  0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|                      ID                       |
//	|QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
//	|                    QDCOUNT                    |
//	|                    ANCOUNT                    |
//	|                    NSCOUNT                    |
//	|                    ARCOUNT                    |
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	| question: QNAME QTYPE QCLASS                  |
//	| answer, authority, additional: resource records|
//
// The EDNS0 OPT pseudo-record (RFC 6891 §6.1.2) sits in the additional
// section: root name, TYPE 41, CLASS = requester's UDP payload size, TTL =
// extended RCODE(8) VERSION(8) DO(1) Z(15).

const (
	headerLen   = 12
	maxNameWire = 255   // RFC 1035 §2.3.4
	maxMsgSize  = 65535 // TCP length prefix limit
	minUDPSize  = 512   // RFC 1035 §4.2.1, without EDNS0
	// maxUDPSize caps UDP answers even when the client advertises more:
	// 1232 bytes fits a 1280-byte IPv6 minimum MTU without fragmentation
	// (DNS flag day 2020) and is also what this server advertises.
	maxUDPSize = 1232
	optLen     = 11 // an OPT record without options

	typeA   = 1
	typePTR = 12
	typeOPT = 41
	typeANY = 255

	classINET = 1
	classANY  = 255

	rcodeSuccess  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeBadVers  = 16 // extended, RFC 6891 §9

	flagQR     = 0x8000
	opcodeMask = 0x7800
	flagAA     = 0x0400
	flagTC     = 0x0200
	flagRD     = 0x0100
	flagRA     = 0x0080
	flagCD     = 0x0010
	doBit      = 0x8000 // in the OPT TTL's low 16 bits
)

// verdict is what parseQuery decided about a message.
type verdict uint8

const (
	verdictOK verdict = iota
	verdictDrop
	verdictFormErr
	verdictNotImp
)

// query is a parsed question. It points into nothing: the name is copied,
// lower-cased, into name, so a query may outlive the message buffer.
type query struct {
	id      uint16
	flags   uint16 // request header flags
	qtype   uint16
	qclass  uint16
	qend    int // end of the question in the message
	edns    bool
	do      bool
	version uint8
	udpSize uint16

	name    [maxNameWire]byte // lower-case presentation form, no trailing dot
	nameLen int
	labels  int
	plain   bool // every label is [a-z0-9_-], so it may be a container name

	client netip.Addr // the sender, when known; zero otherwise
}

func (q *query) key() []byte { return q.name[:q.nameLen] }

// parseQuery reads the header, the question and any OPT record of msg into
// q. Answer and authority records are skipped. Trailing bytes are ignored.
func parseQuery(msg []byte, q *query) verdict {
	if len(msg) < headerLen {
		return verdictDrop
	}
	q.id = binary.BigEndian.Uint16(msg)
	q.flags = binary.BigEndian.Uint16(msg[2:])
	q.edns, q.do, q.version, q.udpSize = false, false, 0, 0
	q.qend = headerLen
	if q.flags&flagQR != 0 {
		return verdictDrop // a response: answering could loop between servers
	}
	if (q.flags>>11)&0xF != 0 {
		return verdictNotImp // only QUERY
	}
	qd := binary.BigEndian.Uint16(msg[4:])
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	if qd != 1 {
		return verdictFormErr
	}
	off, ok := q.readName(msg, headerLen)
	if !ok || off+4 > len(msg) {
		return verdictFormErr
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	q.qend = off + 4
	off = q.qend
	for i := 0; i < an+ns+ar; i++ {
		start := off
		var typ uint16
		if off, typ, ok = skipRR(msg, off); !ok {
			return verdictFormErr
		}
		if typ != typeOPT {
			continue
		}
		// RFC 6891 §6.1.1: one OPT, in the additional section, owned by root.
		if i < an+ns || q.edns || msg[start] != 0 {
			return verdictFormErr
		}
		q.edns = true
		q.udpSize = binary.BigEndian.Uint16(msg[start+3:])
		q.version = msg[start+6]
		q.do = binary.BigEndian.Uint16(msg[start+7:])&doBit != 0
	}
	return verdictOK
}

// readName decodes the uncompressed question name at off into q.name and
// returns the offset after it. Pointers cannot occur in a valid question
// (nothing precedes it to point to) and are rejected.
func (q *query) readName(msg []byte, off int) (int, bool) {
	n, wire := 0, 1
	q.labels, q.plain = 0, true
	for {
		if off >= len(msg) {
			return 0, false
		}
		l := int(msg[off])
		off++
		if l == 0 {
			q.nameLen = n
			return off, true
		}
		wire += l + 1
		if l > 63 || wire > maxNameWire || off+l > len(msg) {
			return 0, false
		}
		if n > 0 {
			q.name[n] = '.'
			n++
		}
		for _, c := range msg[off : off+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if !plainByte(c) {
				q.plain = false
			}
			q.name[n] = c
			n++
		}
		off += l
		q.labels++
	}
}

func plainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// skipRR returns the offset after the resource record at off and its type.
func skipRR(msg []byte, off int) (int, uint16, bool) {
	off, ok := skipName(msg, off)
	if !ok || off+10 > len(msg) {
		return 0, 0, false
	}
	typ := binary.BigEndian.Uint16(msg[off:])
	end := off + 10 + int(binary.BigEndian.Uint16(msg[off+8:]))
	if end > len(msg) {
		return 0, 0, false
	}
	return end, typ, true
}

// skipName returns the offset after a possibly compressed name at off.
func skipName(msg []byte, off int) (int, bool) {
	for off < len(msg) {
		c := msg[off]
		switch c & 0xC0 {
		case 0x00:
			if c == 0 {
				return off + 1, true
			}
			off += int(c) + 1
		case 0xC0:
			if off+2 > len(msg) {
				return 0, false
			}
			return off + 2, true
		default:
			return 0, false // extended label types (RFC 6891 §5) are obsolete
		}
	}
	return 0, false
}

// reply assembles a response in a caller-owned buffer: header, then the
// question copied from the query (keeping the client's letter case), then
// answers, then an OPT record if the query had one.
type reply struct {
	b     []byte
	limit int // largest message the client accepts
	an    uint16
	tc    bool
}

// start writes the header and, if withQuestion, the question of msg.
func (r *reply) start(out, msg []byte, q *query, limit int, withQuestion bool) {
	r.b = append(out[:0], make([]byte, headerLen)...)
	binary.BigEndian.PutUint16(r.b, q.id)
	r.limit, r.an, r.tc = limit, 0, false
	if withQuestion {
		r.b = append(r.b, msg[headerLen:q.qend]...)
		r.b[5] = 1
	}
	if q.edns {
		r.limit -= optLen
	}
}

// fits reports whether n more bytes fit, and marks the reply truncated if
// they do not.
func (r *reply) fits(n int) bool {
	if len(r.b)+n > r.limit {
		r.tc = true
		return false
	}
	return true
}

// rrHeader appends an answer header whose owner is the question name
// (a pointer to offset 12) and counts the record.
func (r *reply) rrHeader(typ uint16, ttl uint32, rdlen int) {
	r.b = append(r.b, 0xC0, headerLen, byte(typ>>8), byte(typ), 0, classINET,
		byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), byte(rdlen>>8), byte(rdlen))
	r.an++
}

// finish writes flags, rcode and counts, appends the OPT record and
// returns the message.
func (r *reply) finish(q *query, flags uint16, rcode int) []byte {
	flags |= flagQR | q.flags&(opcodeMask|flagRD|flagCD)
	if r.tc {
		flags |= flagTC
	}
	flags |= uint16(rcode & 0xF)
	binary.BigEndian.PutUint16(r.b[2:], flags)
	binary.BigEndian.PutUint16(r.b[6:], r.an)
	if q.edns {
		var ttl0, ttl2 byte
		ttl0 = byte(rcode >> 4)
		if q.do {
			ttl2 = doBit >> 8
		}
		r.b = append(r.b, 0, 0, typeOPT, byte(maxUDPSize>>8), byte(maxUDPSize&0xFF), ttl0, 0, ttl2, 0, 0, 0)
		r.b[11] = 1
	}
	return r.b
}

// appendName appends the wire form of the dotted names parts (each may
// hold several labels) followed by the root, or reports false if a label is
// empty or too long or the name exceeds 255 bytes.
func appendName(b []byte, parts ...string) ([]byte, bool) {
	start := len(b)
	for _, p := range parts {
		for len(p) > 0 {
			i := 0
			for i < len(p) && p[i] != '.' {
				i++
			}
			if i == 0 || i > 63 {
				return b[:start], false
			}
			b = append(b, byte(i))
			b = append(b, p[:i]...)
			if i < len(p) {
				i++ // the dot
			}
			p = p[i:]
		}
	}
	b = append(b, 0)
	if len(b)-start > maxNameWire {
		return b[:start], false
	}
	return b, true
}
