package tunnel

// Proxy ARP: the switch answers a container's ARP request for an address
// its network knows (a local port, the gateway, or a gossip record) from
// the snapshot's neighbour table, so such ARP never floods and never
// crosses the underlay.

import (
	"net/netip"

	"github.com/vxwire/vxwire/internal/ether"
)

// answerARP turns an ARP request for an address the network knows into the
// reply, in place in the request's own buffer, and reports whether it did.
// The reply goes straight back to the asking port, so ARP for known
// addresses never floods and never crosses the underlay. A request for the
// asker's own address (a duplicate-address probe) is left alone.
func answerARP(frame []byte, neigh map[netip.Addr]MAC, asker MAC) bool {
	if len(frame) < ether.HeaderLen+ether.ARPLen || len(neigh) == 0 {
		return false
	}
	var a ARP
	if a.Decode(frame[ether.HeaderLen:]) != nil || a.Op != ether.ARPRequest {
		return false
	}
	mac, ok := neigh[a.TPA]
	if !ok || mac == asker {
		return false
	}
	reply := ARP{Op: ether.ARPReply, SHA: mac, SPA: a.TPA, THA: a.SHA, TPA: a.SPA}
	reply.Encode(frame[ether.HeaderLen:])
	(&EthHeader{Dst: asker, Src: mac, Type: ether.TypeARP}).Encode(frame)
	return true
}

// arpTargetPort returns the local port, other than asker, that an ARP
// request in frame asks for: one whose address the network knows and
// whose MAC the FDB places on this host. The gateway's requests go to
// that port alone rather than to every port of the network: the container
// answers as it would to the broadcast, and a host of thousands of
// containers does not write each of them whenever the gateway resolves
// one. Nil sends the request the usual way.
func arpTargetPort(frame []byte, neigh map[netip.Addr]MAC, f *fdb, asker *port) *port {
	if len(frame) < ether.HeaderLen+ether.ARPLen {
		return nil
	}
	var a ARP
	if a.Decode(frame[ether.HeaderLen:]) != nil || a.Op != ether.ARPRequest {
		return nil
	}
	mac, ok := neigh[a.TPA]
	if !ok {
		return nil
	}
	if lp, _ := f.lookup(mac); lp != nil && lp != asker {
		return lp
	}
	return nil
}
