package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vxwire/vxwire/internal/api"
)

// Label values of the direction label: rx counts what the daemon
// received (from the underlay for hosts, networks and peers, from the
// container for endpoints), tx what it sent.
const (
	rx = "rx"
	tx = "tx"
)

// Scopes of vxwire_drops_total; the name label holds the host, network
// or peer name, NETWORK/ENDPOINT for an endpoint, or the network name for
// a network's gateway.
const (
	scopeHost     = "host"
	scopeNetwork  = "network"
	scopePeer     = "peer"
	scopeEndpoint = "endpoint"
	scopeGateway  = "gateway"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// descs are the metrics the collector exports; label sets never change.
var (
	descHostInfo = desc("vxwire_host_info", "The host's name and underlay address; always 1.", "host", "address")

	descFrames = desc("vxwire_frames_total", "Frames the host received from (rx) or sent to (tx) the underlay.", "direction")
	descBytes  = desc("vxwire_bytes_total", "Bytes of the frames in vxwire_frames_total.", "direction")

	descNetFrames = desc("vxwire_network_frames_total", "Frames of a network received from (rx) or sent to (tx) the underlay.", "network", "direction")
	descNetBytes  = desc("vxwire_network_bytes_total", "Bytes of the frames in vxwire_network_frames_total.", "network", "direction")
	descFDB       = desc("vxwire_fdb_entries", "MAC addresses a network's forwarding table holds.", "network")
	descEndpoints = desc("vxwire_endpoints", "Endpoints attached to a network on this host.", "network")

	descPeerFrames = desc("vxwire_peer_frames_total", "Frames received from (rx) or sent to (tx) a peer host.", "peer", "direction")
	descPeerBytes  = desc("vxwire_peer_bytes_total", "Bytes of the frames in vxwire_peer_frames_total.", "peer", "direction")

	descEpFrames = desc("vxwire_endpoint_frames_total", "Frames read from (rx) or written to (tx) a container's interface.", "network", "endpoint", "direction")
	descEpBytes  = desc("vxwire_endpoint_bytes_total", "Bytes of the frames in vxwire_endpoint_frames_total.", "network", "endpoint", "direction")

	descDrops = desc("vxwire_drops_total", "Frames dropped, by reason; scope is host, network, peer, endpoint or gateway and name the host, network or peer name, NETWORK/ENDPOINT, or the gateway's network.", "scope", "name", "reason")

	descGWFrames    = desc("vxwire_gateway_frames_total", "Frames a network's gateway took from (rx) or sent into (tx) the network.", "network", "direction")
	descEgressOpen  = desc("vxwire_egress_flows", "Egress NAT flows open now through a network's gateway.", "network", "proto")
	descEgressTotal = desc("vxwire_egress_flows_total", "Egress NAT flows a network's gateway accepted.", "network", "proto")
	descEgressDial  = desc("vxwire_egress_dial_errors_total", "Egress NAT flows whose destination could not be reached.", "network")

	descWGAge   = desc("vxwire_wireguard_handshake_age_seconds", "Seconds since the last WireGuard handshake with a peer; absent before the first.", "peer")
	descWGEpoch = desc("vxwire_wireguard_key_epoch", "Preshared-key epoch in force with a peer; 0 when rotation is off.", "peer")
	descWGBytes = desc("vxwire_wireguard_bytes_total", "Bytes of the encrypted path received from (rx) or sent to (tx) a peer, WireGuard overhead included.", "peer", "direction")

	descDNS = desc("vxwire_dns_queries_total", "DNS queries the resolver of a network has handled, by result.", "network", "result")

	descRefused = desc("vxwire_refused_total", "Control-plane input refused, by reason: gossip and replicated-log connections from strangers or failing the secret, gossip failing the config rules, API networks not applied here.", "reason")

	descRecovered = desc("vxwire_recovered_panics_total", "Panics recovered in goroutines serving one flow (API request, DNS or raft connection, egress flow), by goroutine kind; each closed only its flow.", "goroutine")

	allDescs = []*prometheus.Desc{descHostInfo, descFrames, descBytes, descNetFrames, descNetBytes, descFDB, descEndpoints,
		descPeerFrames, descPeerBytes, descEpFrames, descEpBytes, descDrops, descWGAge, descWGEpoch, descWGBytes, descDNS,
		descGWFrames, descEgressOpen, descEgressTotal, descEgressDial, descRefused, descRecovered}
)

// collector turns one Status and Snapshot per scrape into constant
// metrics. now is the clock handshake ages are measured against.
type collector struct {
	src Source
	now func() time.Time
}

func newCollector(src Source) *collector { return &collector{src: src, now: time.Now} }

// Describe sends every descriptor the collector may use.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
	for _, d := range deviceDescs {
		ch <- d
	}
	for _, d := range doorDescs {
		ch <- d
	}
}

// Collect reads the source once and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st, snap := c.src.Status(), c.src.Metrics()
	e := emitter{ch: ch}
	e.gauge(descHostInfo, 1, st.Host, st.Address)
	e.counters(descFrames, descBytes, st.Counters)
	e.drops(scopeHost, st.Host, st.Counters)

	perNetwork := map[string]int{}
	for _, ep := range st.Endpoints {
		perNetwork[ep.Network]++
	}
	for _, n := range st.Networks {
		e.counters(descNetFrames, descNetBytes, n.Counters, n.Name)
		e.drops(scopeNetwork, n.Name, n.Counters)
		e.gauge(descFDB, float64(n.FDB), n.Name)
		e.gauge(descEndpoints, float64(perNetwork[n.Name]), n.Name)
		if g := n.GatewayStats; g != nil {
			e.gateway(n.Name, g)
		}
	}
	now := c.now()
	for _, p := range st.Peers {
		e.counters(descPeerFrames, descPeerBytes, p.Counters, p.Name)
		e.drops(scopePeer, p.Name, p.Counters)
		if wg := p.WireGuard; wg != nil {
			if !wg.LastHandshake.IsZero() {
				e.gauge(descWGAge, max(now.Sub(wg.LastHandshake).Seconds(), 0), p.Name)
			}
			e.gauge(descWGEpoch, float64(wg.KeyEpoch), p.Name)
			e.counter(descWGBytes, wg.RxBytes, p.Name, rx)
			e.counter(descWGBytes, wg.TxBytes, p.Name, tx)
		}
	}
	for _, ep := range st.Endpoints {
		e.counters(descEpFrames, descEpBytes, ep.Counters, ep.Network, ep.Name)
		e.drops(scopeEndpoint, ep.Network+"/"+ep.Name, ep.Counters)
	}
	e.devices(st)
	e.doors(st)
	for reason, n := range st.Refused {
		e.counter(descRefused, n, reason)
	}
	for kind, n := range st.Recovered {
		e.counter(descRecovered, n, kind)
	}
	for network, results := range snap.DNSQueries {
		for result, n := range results {
			e.counter(descDNS, n, network, result)
		}
	}
}

// emitter sends constant metrics; a metric that cannot be built (a
// label value that is not UTF-8) is sent as an invalid metric, which the
// handler reports while serving the rest.
type emitter struct {
	ch chan<- prometheus.Metric
}

func (e emitter) send(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	e.ch <- m
}

func (e emitter) counter(d *prometheus.Desc, v uint64, labels ...string) {
	e.send(d, prometheus.CounterValue, float64(v), labels...)
}

func (e emitter) gauge(d *prometheus.Desc, v float64, labels ...string) {
	e.send(d, prometheus.GaugeValue, v, labels...)
}

// counters sends the frame and byte counts of c in both directions, with
// labels before the direction label.
func (e emitter) counters(frames, bytes *prometheus.Desc, c api.Counters, labels ...string) {
	e.counter(frames, c.RxFrames, append(labels, rx)...)
	e.counter(frames, c.TxFrames, append(labels, tx)...)
	e.counter(bytes, c.RxBytes, append(labels, rx)...)
	e.counter(bytes, c.TxBytes, append(labels, tx)...)
}

// gateway sends the metrics of network's gateway.
func (e emitter) gateway(network string, g *api.GatewayStatus) {
	e.counter(descGWFrames, g.Counters.RxFrames, network, rx)
	e.counter(descGWFrames, g.Counters.TxFrames, network, tx)
	e.drops(scopeGateway, network, g.Counters)
	e.gauge(descEgressOpen, float64(g.EgressTCPOpen), network, "tcp")
	e.gauge(descEgressOpen, float64(g.EgressUDPOpen), network, "udp")
	e.counter(descEgressTotal, g.EgressTCPTotal, network, "tcp")
	e.counter(descEgressTotal, g.EgressUDPTotal, network, "udp")
	e.gauge(descEgressOpen, float64(g.EgressICMPOpen), network, "icmp")
	e.counter(descEgressTotal, g.EgressICMPTotal, network, "icmp")
	e.counter(descEgressDial, g.DialErrors, network)
}

func (e emitter) drops(scope, name string, c api.Counters) {
	for reason, n := range c.Drops {
		e.counter(descDrops, n, scope, name, reason)
	}
}
