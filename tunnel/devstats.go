package tunnel

import (
	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/resolver"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// Counters the devices below the switch keep themselves: TAP devices,
// the encrypted connection, the DNS servers and the underlay sockets'
// offload state. Status
// reads them on demand; the data path never does.

// tapStatser is a port's device that keeps tap.Stats: the native TAP and
// its fake do, a gateway does not.
type tapStatser interface {
	Stats() tap.Stats
}

// offloader is an underlay socket that reports its UDP offload state:
// encap.StdConn does.
type offloader interface {
	Offload() (gro, gso bool)
}

// tapStatus returns d's counters, or nil if d keeps none.
func tapStatus(d tap.Device) *api.TAPStats {
	sd, ok := d.(tapStatser)
	if !ok {
		return nil
	}
	s := sd.Stats()
	return &api.TAPStats{
		RxReads: s.RxReads, RxSuperframes: s.RxSuperframes, RxFrames: s.RxFrames, RxDropped: s.RxDropped,
		TxWrites: s.TxWrites, TxFrames: s.TxFrames, TxCoalesced: s.TxCoalesced,
		TxBadChecksum: s.TxBadChecksum, TxDropped: s.TxDropped,
	}
}

// wireguardStats returns the encrypted connection's counters, or nil when
// the host has no key.
func (e *Engine) wireguardStats() *api.WireGuardStats {
	if e.enc == nil {
		return nil
	}
	s := e.enc.Stats()
	out := &api.WireGuardStats{TxPackets: s.TxPackets, TxBytes: s.TxBytes, RxPackets: s.RxPackets, RxBytes: s.RxBytes,
		InnerRxPackets: s.InnerRxPackets, InnerTxPackets: s.InnerTxPackets}
	for r, n := range s.Drops {
		if n == 0 {
			continue
		}
		if out.Drops == nil {
			out.Drops = make(map[string]uint64)
		}
		out.Drops[crypto.DropReason(r).String()] = n
	}
	return out
}

// offload reports the underlay sockets' UDP offload state.
func (e *Engine) offload() api.Offload {
	o := api.Offload{TxSockets: len(e.sw.tx)}
	if rx, ok := e.rx.(offloader); ok {
		o.UDPGRO, _ = rx.Offload()
	}
	for _, c := range e.sw.tx {
		if tx, ok := c.(offloader); ok {
			if _, gso := tx.Offload(); gso {
				o.GSOSockets++
			}
		}
	}
	return o
}

// dnsResults names the resolver's per-result query counts, the values of
// the result label of vxwire_dns_queries_total.
func dnsResults(s resolver.Stats) map[string]uint64 {
	return map[string]uint64{
		"noerror": s.NoError, "nxdomain": s.NXDomain, "nodata": s.NoData, "refused": s.Refused,
		"formerr": s.FormErr, "notimp": s.NotImp, "servfail": s.ServFail, "forwarded": s.Forwarded,
		"dropped": s.Dropped,
	}
}

// dnsStatus returns the counters of a network's DNS server, or nil if it
// does not run.
func dnsStatus(srv *resolver.Server) *api.DNSStats {
	if srv == nil {
		return nil
	}
	s := srv.Stats()
	return &api.DNSStats{Queries: dnsResults(s), UDP: s.UDP, TCP: s.TCP, Truncated: s.Truncated, TCPRejected: s.TCPRejected}
}
