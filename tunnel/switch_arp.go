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
