package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vxwire/vxwire/internal/api"
)

// The doors into the overlay from outside it (published ports, the SOCKS5
// proxy) and the per-peer path MTU and failed endpoints, as the status API
// reports them. A publish is named by its network, protocol, port and
// listen address (empty: the host's underlay address), its key.

var (
	pubLabels = []string{"network", "proto", "port", "listen"}

	descPubAccepted = desc("vxwire_publish_accepted_total", "Connections (UDP flows) a published port accepted on this host.", pubLabels...)
	descPubActive   = desc("vxwire_publish_active", "Connections (UDP flows) of a published port open now on this host.", pubLabels...)
	descPubRefused  = desc("vxwire_publish_refused_total", "Connections (UDP sources) a published port refused at its bound.", pubLabels...)
	descPubDialErr  = desc("vxwire_publish_dial_errors_total", "Connections of a published port that reached no target.", pubLabels...)
	descPubRelayed  = desc("vxwire_publish_relayed_total", "Connections of a published port relayed to another host's endpoint.", pubLabels...)
	descPubBytes    = desc("vxwire_publish_bytes_total", "Bytes a published port carried towards its targets (in) and back (out).", append(pubLabels, "direction")...)
	descPubTargets  = desc("vxwire_publish_targets", "Endpoints new connections of a published port may go to from this host.", pubLabels...)

	descSocksClients = desc("vxwire_socks_clients_total", "SOCKS5 clients by what became of them: accepted, over_limit (closed at accept), bad_handshake.", "outcome")
	descSocksOpen    = desc("vxwire_socks_clients_open", "SOCKS5 clients served now.")
	descSocksReqs    = desc("vxwire_socks_requests_total", "SOCKS5 requests by outcome: connect and associate (served), refused (answered with an error).", "outcome")
	descSocksUDPDrop = desc("vxwire_socks_udp_dropped_total", "SOCKS5 UDP association datagrams dropped: malformed, fragment, foreign source, target limit.")

	descPathMTU = desc("vxwire_peer_path_mtu", "Path MTU to a peer as the kernel knows it; absent while unknown.", "peer")
	descFailed  = desc("vxwire_failed_endpoints", "Endpoints of the config file this host could not attach.")

	doorDescs = []*prometheus.Desc{descPubAccepted, descPubActive, descPubRefused, descPubDialErr, descPubRelayed,
		descPubBytes, descPubTargets, descSocksClients, descSocksOpen, descSocksReqs, descSocksUDPDrop, descPathMTU, descFailed}
)

// doors emits the published ports, the SOCKS5 proxy, the peers' path MTU
// and the failed endpoints of st.
func (e emitter) doors(st api.Status) {
	for _, p := range st.Publishes {
		l := []string{p.Network, p.Proto, strconv.Itoa(int(p.Port)), p.Listen}
		e.counter(descPubAccepted, p.Accepted, l...)
		e.gauge(descPubActive, float64(max(p.Active, 0)), l...)
		e.counter(descPubRefused, p.Refused, l...)
		e.counter(descPubDialErr, p.DialErrors, l...)
		e.counter(descPubRelayed, p.Relayed, l...)
		e.counter(descPubBytes, p.BytesIn, append(l, "in")...)
		e.counter(descPubBytes, p.BytesOut, append(l, "out")...)
		e.gauge(descPubTargets, float64(p.Targets), l...)
	}
	if s := st.Socks; s != nil {
		e.counter(descSocksClients, s.Accepted, "accepted")
		e.counter(descSocksClients, s.OverLimit, "over_limit")
		e.counter(descSocksClients, s.BadHandshake, "bad_handshake")
		e.gauge(descSocksOpen, float64(s.Open))
		e.counter(descSocksReqs, s.Connects, "connect")
		e.counter(descSocksReqs, s.Associations, "associate")
		e.counter(descSocksReqs, s.Refused, "refused")
		e.counter(descSocksUDPDrop, s.UDPDropped)
	}
	for _, p := range st.Peers {
		if p.PathMTU > 0 {
			e.gauge(descPathMTU, float64(p.PathMTU), p.Name)
		}
	}
	e.gauge(descFailed, float64(len(st.Failed)))
}
