package tunnel

// The control plane's side of the hand-over: it builds a snapshot from
// its state under its lock and publishes it to the switch (switch.go).

import "net/netip"

// unlockedBuildSnapshot builds the data path's view of the current state:
// the peers by address, per network the flood lists, the proxy-ARP table
// and the pins of the overlay's records (records.go), and the DNS names
// (records.go, multinet.go). It writes nothing the switch reads; hand the
// result to Switch.publish.
func (e *Engine) unlockedBuildSnapshot() *snapshot {
	s := &snapshot{
		byVNI:  make(map[uint32]*netView, len(e.networks)),
		byAddr: make(map[netip.Addr]*peer, len(e.peers)),
	}
	for _, pc := range e.cfg.Peers {
		r := e.peers[pc.Name]
		s.peers = append(s.peers, r)
		s.byAddr[r.addr.Addr()] = r
	}
	// Sizes known up front: with thousands of endpoints, growing the maps
	// is most of the work of a rebuild, which every attach does.
	portCounts := make(map[string]int, len(e.networks))
	for k := range e.ports {
		portCounts[k.network]++
	}
	for _, nc := range e.cfg.Networks {
		n := e.networks[nc.Name]
		c := portCounts[nc.Name] + 1 // and the gateway
		nv := &netView{net: n, peers: s.peers, neigh: make(map[netip.Addr]MAC, c), ports: make([]*port, 0, c), encrypted: nc.Encrypted}
		nv.peers = nil
		for _, r := range s.peers {
			switch {
			case nc.Encrypted && r.key != ([32]byte{}) && e.enc != nil:
				nv.peers = append(nv.peers, r)
			case !nc.Encrypted && !r.roaming:
				// Plain VXLAN needs the peer's underlay address.
				nv.peers = append(nv.peers, r)
			}
		}
		nv.ports = append(nv.ports, n.gw)
		nv.neigh[n.gw.addr.Addr()] = n.gw.mac
		s.byVNI[nc.VNI] = nv
	}
	for _, ep := range e.cfg.Endpoints {
		p := e.ports[epKey{ep.Network, ep.Name}]
		if p == nil {
			continue
		}
		nv := s.byVNI[p.net.cfg.VNI]
		nv.ports = append(nv.ports, p)
		nv.neigh[p.addr.Addr()] = p.mac
	}
	e.unlockedAddRecords(s, portCounts)
	e.unlockedAddShared(s)
	e.unlockedAddServices(s)
	e.unlockedAddHosts(s)
	return s
}
