package tunnel

import (
	"sort"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/metrics"
)

// Status reports networks, peers, endpoints and counters. It is safe to
// call at any time; the data path keeps running while it is built.
func (e *Engine) Status() api.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := api.Status{Counters: e.sw.host.snapshot(), Process: processStats()}
	if e.cfg == nil {
		return st
	}
	st.Refused = e.refused.Snapshot()
	st.Recovered = e.recovered.Snapshot()
	if e.cluster != nil {
		st.Refused = addCounts(st.Refused, e.cluster.Refused())
	}
	if e.blocks != nil {
		st.Refused = addCounts(st.Refused, e.blocks.Refused())
	}
	st.Host = e.cfg.Host.Name
	st.Rootless = e.cfg.Host.Rootless
	st.Address = e.rx.LocalAddr().String()
	st.Offload, st.WireGuard = e.offload(), e.wireguardStats()
	var peerNames []string
	wg := e.wireguardStatus()
	for _, pc := range e.cfg.Peers {
		r := e.peers[pc.Name]
		peerNames = append(peerNames, r.name)
		st.Peers = append(st.Peers, api.PeerStatus{
			Name: r.name, Address: r.addr.String(), Counters: r.stats.snapshot(), WireGuard: wg[r.addr],
			PathMTU: int(r.pmtu.Load()),
		})
	}
	for _, nc := range e.cfg.Networks {
		n := e.networks[nc.Name]
		ns := api.NetworkStatus{
			Name: nc.Name, VNI: nc.VNI, Subnet: nc.Subnet.String(), Gateway: nc.Gateway.String(),
			MTU: n.mtu, Peers: peerNames, FDB: n.fdb.len(), Counters: n.stats.snapshot(),
			DNS: dnsStatus(n.dns),
		}
		if n.gw != nil && n.gw.gw != nil {
			ns.GatewayStats = gatewayStatus(n.gw.gw.Stats())
		}
		st.Networks = append(st.Networks, ns)
	}
	if e.socks != nil {
		ss := e.socks.Stats()
		st.Socks = &api.SocksStatus{
			Listen: e.socks.Addr().String(), Accepted: ss.Accepted, Open: ss.Open, OverLimit: ss.OverLimit,
			BadHandshake: ss.BadHandshake, Refused: ss.Refused, UDPDropped: ss.UDPDropped,
			Connects: ss.ConnectsOK, Associations: ss.AssociationsOK,
		}
	}
	st.Publishes = e.unlockedPublishes()
	for _, p := range e.ports {
		ifname := p.cfg.IfName
		if ifname == "" && p.host == nil { // a host endpoint has none
			ifname = "eth0"
		}
		st.Endpoints = append(st.Endpoints, api.EndpointStatus{
			Network: p.key.network, Name: p.key.name, NetNS: p.cfg.NetNS, IfName: ifname,
			Address: p.addr.String(), MAC: p.mac.String(), Counters: p.stats.snapshot(), TAP: tapStatus(p.dev),
		})
	}
	for k, d := range e.failedEps {
		st.Failed = append(st.Failed, api.FailedEndpoint{Network: k.network, Name: k.name, NetNS: d.Endpoint.NetNS, Reason: d.Failed})
	}
	sort.Slice(st.Failed, func(i, j int) bool {
		a, b := st.Failed[i], st.Failed[j]
		return a.Network < b.Network || a.Network == b.Network && a.Name < b.Name
	})
	sort.Slice(st.Endpoints, func(i, j int) bool {
		a, b := st.Endpoints[i], st.Endpoints[j]
		if a.Network != b.Network {
			return a.Network < b.Network
		}
		return a.Name < b.Name
	})
	return st
}

// Metrics reports what the Prometheus exporter needs beyond Status: DNS
// queries per network by result (the resolver's own result names).
func (e *Engine) Metrics() metrics.Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	snap := metrics.Snapshot{DNSQueries: make(map[string]map[string]uint64)}
	for name, n := range e.networks {
		if n.dns == nil {
			continue
		}
		snap.DNSQueries[name] = dnsResults(n.dns.Stats())
	}
	return snap
}

// addCounts adds the counts of src to dst, making dst when it is nil and
// src is not empty.
func addCounts(dst, src map[string]uint64) map[string]uint64 {
	for k, v := range src {
		if dst == nil {
			dst = make(map[string]uint64)
		}
		dst[k] += v
	}
	return dst
}
