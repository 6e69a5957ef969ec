package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vxwire/vxwire/internal/config"
)

// Wire format. Every message starts with a one-byte type; integers are
// unsigned varints unless noted, strings are a varint length followed by
// UTF-8 bytes (at most maxString), addresses are a length byte (0, 4 or 16)
// followed by the address bytes, versions are two big-endian uint64s.
//
//	state    = 1 hostState
//	notice   = 2 host version                  "my state changed, pull it"
//	pull     = 3 from                           "send me your state"
//	states   = 4 count hostState*               push/pull payload
//	claim    = 5 id(u64) from network ip endpoint
//	answer   = 6 id(u64) from flags holderHost holderEndpoint
//	release  = 7 id(u64) from network ip endpoint
//	networks = 8 count netEntry*                changed network definitions
//	sync     = 9 count hostState* count netEntry*  push/pull payload
//
//	hostState   = host version nrec record* nres reservation* nnet hostNet*
//	record      = network name naliases alias* ip mac(6)
//	reservation = network ip endpoint
//	hostNet     = name vni subnet               a network of the host's config file
//	netEntry    = name clock(u64) origin flags [live]
//	live        = createdClock(u64) createdOrigin vni subnet gateway mtu
//	subnet      = address [bits(1)]             bits only for a valid address
//
// flags holds 1 for a tombstone (then live is absent and no other flag
// is set), 2 for Encrypted and 4 for Egress; vni is at most 2^24-1 and mtu
// at most 65535. Hosts of this version send sync in push/pull, with no
// netEntry (network definitions live in the daemon's Raft log; see
// network.go), and still accept states and networks from older ones. The
// decoder rejects trailing bytes, oversized strings and counts that
// cannot fit in the remaining input, so a hostile peer cannot make it
// allocate more than a small multiple of the message size.

const (
	msgState   byte = 1
	msgNotice  byte = 2
	msgPull    byte = 3
	msgStates  byte = 4
	msgClaim   byte = 5
	msgAnswer  byte = 6
	msgRelease byte = 7
	msgNets    byte = 8
	msgSync    byte = 9
)

// maxString bounds every string on the wire; names, aliases and network
// names longer than this are refused by SetLocal.
const maxString = 255

// Minimum encoded sizes, used to bound counts before allocating.
const (
	minRecordSize      = 1 + 1 + 1 + 1 + 6
	minReservationSize = 1 + 1 + 1
	minStateSize       = 1 + 16 + 1 + 1 + 1
	minHostNetSize     = 1 + 1 + 1
	minNetEntrySize    = 1 + 8 + 1 + 1
)

// answer flags.
const (
	flagGranted byte = 1 << iota
	flagPending
)

// netEntry flags.
const (
	flagDeleted byte = 1 << iota
	flagEncrypted
	flagEgress
)

// ErrMalformed is returned (wrapped) by decode for any input that is not a
// well-formed message.
var ErrMalformed = errors.New("malformed gossip message")

// version orders the record sets of one host. Epoch is the start time of the
// daemon in nanoseconds, so a restarted daemon outranks its previous life
// even though its counter starts again at zero.
type version struct {
	Epoch   uint64
	Counter uint64
}

// compare returns -1, 0 or +1 as v is older than, equal to or newer than w.
func (v version) compare(w version) int {
	switch {
	case v.Epoch != w.Epoch:
		if v.Epoch < w.Epoch {
			return -1
		}
		return 1
	case v.Counter < w.Counter:
		return -1
	case v.Counter > w.Counter:
		return 1
	}
	return 0
}

// reservation is an address a host has claimed for one of its endpoints.
type reservation struct {
	Network  string
	IP       netip.Addr
	Endpoint string
}

// hostState is everything one host announces, travelling whole.
type hostState struct {
	Host         string
	Version      version
	Records      []Record
	Reservations []reservation
	Networks     []HostNetwork
}

// claimMsg is a claim request, or a release when sent as msgRelease.
type claimMsg struct {
	ID       uint64
	From     string
	Network  string
	IP       netip.Addr
	Endpoint string
}

// answerMsg answers a claim request.
type answerMsg struct {
	ID             uint64
	From           string
	Granted        bool
	Pending        bool
	HolderHost     string
	HolderEndpoint string
}

// message is the decoded form of any gossip message; Type selects which of
// the other fields is meaningful.
type message struct {
	Type   byte
	State  hostState   // msgState; msgNotice uses Host and Version only
	States []hostState // msgStates, msgSync
	Nets   []netEntry  // msgNets, msgSync
	From   string      // msgPull
	Claim  claimMsg    // msgClaim, msgRelease
	Answer answerMsg   // msgAnswer
}

// encode appends the wire form of m to b.
func encode(b []byte, m *message) []byte {
	b = append(b, m.Type)
	switch m.Type {
	case msgState:
		b = appendState(b, &m.State)
	case msgNotice:
		b = appendString(b, m.State.Host)
		b = appendVersion(b, m.State.Version)
	case msgPull:
		b = appendString(b, m.From)
	case msgStates, msgSync:
		b = binary.AppendUvarint(b, uint64(len(m.States)))
		for i := range m.States {
			b = appendState(b, &m.States[i])
		}
		if m.Type == msgSync {
			b = appendNetEntries(b, m.Nets)
		}
	case msgNets:
		b = appendNetEntries(b, m.Nets)
	case msgClaim, msgRelease:
		b = binary.BigEndian.AppendUint64(b, m.Claim.ID)
		b = appendString(b, m.Claim.From)
		b = appendString(b, m.Claim.Network)
		b = appendAddr(b, m.Claim.IP)
		b = appendString(b, m.Claim.Endpoint)
	case msgAnswer:
		a := &m.Answer
		b = binary.BigEndian.AppendUint64(b, a.ID)
		b = appendString(b, a.From)
		var f byte
		if a.Granted {
			f |= flagGranted
		}
		if a.Pending {
			f |= flagPending
		}
		b = append(b, f)
		b = appendString(b, a.HolderHost)
		b = appendString(b, a.HolderEndpoint)
	}
	return b
}

func appendState(b []byte, s *hostState) []byte {
	b = appendString(b, s.Host)
	b = appendVersion(b, s.Version)
	b = binary.AppendUvarint(b, uint64(len(s.Records)))
	for i := range s.Records {
		r := &s.Records[i]
		b = appendString(b, r.Network)
		b = appendString(b, r.Name)
		b = binary.AppendUvarint(b, uint64(len(r.Aliases)))
		for _, a := range r.Aliases {
			b = appendString(b, a)
		}
		b = appendAddr(b, r.IP)
		b = append(b, r.MAC[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Reservations)))
	for _, r := range s.Reservations {
		b = appendString(b, r.Network)
		b = appendAddr(b, r.IP)
		b = appendString(b, r.Endpoint)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Networks)))
	for _, n := range s.Networks {
		b = appendString(b, n.Name)
		b = binary.AppendUvarint(b, uint64(n.VNI))
		b = appendPrefix(b, n.Subnet)
	}
	return b
}

func appendPrefix(b []byte, p netip.Prefix) []byte {
	if !p.IsValid() {
		return appendAddr(b, netip.Addr{})
	}
	return append(appendAddr(b, p.Addr()), byte(p.Bits()))
}

func (r *reader) prefix() netip.Prefix {
	a := r.addr()
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := r.byte()
	if int(bits) > a.BitLen() {
		r.fail("bad prefix length")
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, int(bits))
}

func appendVersion(b []byte, v version) []byte {
	b = binary.BigEndian.AppendUint64(b, v.Epoch)
	return binary.BigEndian.AppendUint64(b, v.Counter)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case a.Is4():
		v := a.As4()
		return append(append(b, 4), v[:]...)
	case a.Is6():
		v := a.As16()
		return append(append(b, 16), v[:]...)
	}
	return append(b, 0)
}

// decode parses one message. The result does not alias b.
func decode(b []byte) (*message, error) {
	r := reader{b: b}
	m := &message{Type: r.byte()}
	switch m.Type {
	case msgState:
		m.State = r.state()
	case msgNotice:
		m.State.Host = r.string()
		m.State.Version = r.version()
	case msgPull:
		m.From = r.string()
	case msgStates, msgSync:
		n := r.count(minStateSize)
		if n > 0 {
			m.States = make([]hostState, n)
		}
		for i := range m.States {
			m.States[i] = r.state()
		}
		if m.Type == msgSync {
			m.Nets = r.netEntries()
		}
	case msgNets:
		m.Nets = r.netEntries()
	case msgClaim, msgRelease:
		m.Claim = claimMsg{ID: r.uint64(), From: r.string(), Network: r.string(), IP: r.addr(), Endpoint: r.string()}
	case msgAnswer:
		a := &m.Answer
		a.ID = r.uint64()
		a.From = r.string()
		f := r.byte()
		if f&^(flagGranted|flagPending) != 0 {
			r.fail("unknown answer flags")
		}
		a.Granted, a.Pending = f&flagGranted != 0, f&flagPending != 0
		a.HolderHost = r.string()
		a.HolderEndpoint = r.string()
	default:
		if r.err == nil {
			r.fail(fmt.Sprintf("unknown type %d", m.Type))
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

// reader consumes b; after the first error every call returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, why)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uint64() uint64 {
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count and checks that that many elements of at
// least minSize bytes fit in the remaining input.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/minSize) {
		r.fail("count exceeds input")
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > maxString || n > uint64(len(r.b)) {
		r.fail("bad string length")
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) version() version {
	return version{Epoch: r.uint64(), Counter: r.uint64()}
}

func (r *reader) addr() netip.Addr {
	n := r.byte()
	if r.err != nil {
		return netip.Addr{}
	}
	if (n != 0 && n != 4 && n != 16) || int(n) > len(r.b) {
		r.fail("bad address")
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(r.b[:n])
	r.b = r.b[n:]
	return a
}

func (r *reader) state() hostState {
	s := hostState{Host: r.string(), Version: r.version()}
	if n := r.count(minRecordSize); n > 0 {
		s.Records = make([]Record, n)
	}
	for i := range s.Records {
		rec := &s.Records[i]
		rec.Network = r.string()
		rec.Name = r.string()
		if k := r.count(1); k > 0 {
			rec.Aliases = make([]string, k)
		}
		for j := range rec.Aliases {
			rec.Aliases[j] = r.string()
		}
		rec.IP = r.addr()
		if len(r.b) < 6 {
			r.fail("truncated")
			return hostState{}
		}
		copy(rec.MAC[:], r.b)
		r.b = r.b[6:]
		rec.Host = s.Host
	}
	if n := r.count(minReservationSize); n > 0 {
		s.Reservations = make([]reservation, n)
	}
	for i := range s.Reservations {
		s.Reservations[i] = reservation{Network: r.string(), IP: r.addr(), Endpoint: r.string()}
	}
	if n := r.count(minHostNetSize); n > 0 {
		s.Networks = make([]HostNetwork, n)
	}
	for i := range s.Networks {
		hn := HostNetwork{Host: s.Host, Name: r.string()}
		vni := r.uvarint()
		if vni > maxVNI {
			r.fail("vni out of range")
		}
		hn.VNI = uint32(vni)
		hn.Subnet = r.prefix()
		s.Networks[i] = hn
	}
	if r.err != nil {
		return hostState{}
	}
	return s
}

func appendNetEntries(b []byte, es []netEntry) []byte {
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i := range es {
		b = appendNetEntry(b, &es[i])
	}
	return b
}

func appendNetEntry(b []byte, e *netEntry) []byte {
	b = appendString(b, e.Def.Name)
	b = binary.BigEndian.AppendUint64(b, e.Version.Clock)
	b = appendString(b, e.Version.Origin)
	if e.Deleted {
		return append(b, flagDeleted)
	}
	var f byte
	if e.Def.Encrypted {
		f |= flagEncrypted
	}
	if e.Def.Egress {
		f |= flagEgress
	}
	b = append(b, f)
	b = binary.BigEndian.AppendUint64(b, e.Created.Clock)
	b = appendString(b, e.Created.Origin)
	b = binary.AppendUvarint(b, uint64(e.Def.VNI))
	b = appendPrefix(b, e.Def.Subnet)
	b = appendAddr(b, e.Def.Gateway)
	return binary.AppendUvarint(b, uint64(max(e.Def.MTU, 0)))
}

func (r *reader) netEntries() []netEntry {
	n := r.count(minNetEntrySize)
	if n == 0 {
		return nil
	}
	es := make([]netEntry, n)
	for i := range es {
		es[i] = r.netEntry()
	}
	if r.err != nil {
		return nil
	}
	return es
}

func (r *reader) netEntry() netEntry {
	e := netEntry{Def: config.Network{Name: r.string()}}
	e.Version = netVersion{Clock: r.uint64(), Origin: r.string()}
	f := r.byte()
	if f&^(flagDeleted|flagEncrypted|flagEgress) != 0 || (f&flagDeleted != 0 && f != flagDeleted) {
		r.fail("bad network flags")
	}
	if r.err != nil {
		return netEntry{}
	}
	if f == flagDeleted {
		e.Deleted = true
		return e
	}
	e.Def.Encrypted, e.Def.Egress = f&flagEncrypted != 0, f&flagEgress != 0
	e.Created = netVersion{Clock: r.uint64(), Origin: r.string()}
	vni := r.uvarint()
	if vni > maxVNI {
		r.fail("vni out of range")
	}
	e.Def.VNI = uint32(vni)
	e.Def.Subnet = r.prefix()
	e.Def.Gateway = r.addr()
	mtu := r.uvarint()
	if mtu > maxMTU {
		r.fail("mtu out of range")
	}
	e.Def.MTU = int(mtu)
	if r.err != nil {
		return netEntry{}
	}
	return e
}
