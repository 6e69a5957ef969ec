package resolver

import "sync/atomic"

// Stats are the server's counters since New. Each query is counted once in
// exactly one result field (NoError … Dropped) and once in its transport
// field (UDP or TCP).
type Stats struct {
	NoError   uint64 // local answers with records
	NXDomain  uint64 // local names that do not exist
	NoData    uint64 // local names without records of the asked type
	Refused   uint64 // other names while forwarding is off
	FormErr   uint64 // malformed queries, including unsupported EDNS versions
	NotImp    uint64 // opcodes other than QUERY and classes other than IN
	ServFail  uint64 // forwarding failed on every upstream, or too many forwards at once
	Forwarded uint64 // answers relayed from an upstream
	Dropped   uint64 // not answered: shorter than a header, or a response sent as a query

	Truncated uint64 // UDP answers cut to the client's size, with TC set (also counted by result)

	UDP         uint64 // queries received over UDP
	TCP         uint64 // queries received over TCP
	TCPRejected uint64 // TCP connections closed at once because MaxTCPConns were open
}

// result is the outcome of one query, an index into counters.res.
type result uint8

const (
	resNoError result = iota
	resNXDomain
	resNoData
	resRefused
	resFormErr
	resNotImp
	resServFail
	resForwarded
	resDropped
	numResults
)

// transport is the protocol a query arrived on.
type transport uint8

const (
	udp transport = iota
	tcp
)

// counters are updated with atomic adds on the query path; Stats reads them.
type counters struct {
	res         [numResults]atomic.Uint64
	truncated   atomic.Uint64
	byTransport [2]atomic.Uint64
	tcpRejected atomic.Uint64
}

func (c *counters) count(tr transport, r result) {
	c.res[r].Add(1)
	c.byTransport[tr].Add(1)
}

// Stats returns a snapshot of the counters. Fields are read one by one, so
// a snapshot taken under load may be off by the queries in flight.
func (s *Server) Stats() Stats {
	c := &s.st
	return Stats{
		NoError:     c.res[resNoError].Load(),
		NXDomain:    c.res[resNXDomain].Load(),
		NoData:      c.res[resNoData].Load(),
		Refused:     c.res[resRefused].Load(),
		FormErr:     c.res[resFormErr].Load(),
		NotImp:      c.res[resNotImp].Load(),
		ServFail:    c.res[resServFail].Load(),
		Forwarded:   c.res[resForwarded].Load(),
		Dropped:     c.res[resDropped].Load(),
		Truncated:   c.truncated.Load(),
		UDP:         c.byTransport[udp].Load(),
		TCP:         c.byTransport[tcp].Load(),
		TCPRejected: c.tcpRejected.Load(),
	}
}
