package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vxwire/vxwire/internal/api"
)

// Metrics of the devices below the switch: containers' TAP devices, the
// encrypted connection, the DNS servers' transports and the underlay
// sockets' UDP offload state. DNS queries by result come from the
// Snapshot (vxwire_dns_queries_total).
var (
	descTAPCalls     = desc("vxwire_tap_syscalls_total", "read(2) (rx) and writev(2) (tx) calls on a container's TAP device that moved frames.", "network", "endpoint", "direction")
	descTAPFrames    = desc("vxwire_tap_frames_total", "Frames a container's TAP device returned (rx) or took (tx).", "network", "endpoint", "direction")
	descTAPDrops     = desc("vxwire_tap_drops_total", "Frames a container's TAP device dropped: malformed or too large superframes (rx), malformed frames or frames the kernel refused (tx).", "network", "endpoint", "direction")
	descTAPSplit     = desc("vxwire_tap_superframes_total", "TSO superframes from a container that were segmented into frames.", "network", "endpoint")
	descTAPCoalesced = desc("vxwire_tap_coalesced_frames_total", "Frames written to a container as part of a GSO superframe.", "network", "endpoint")
	descTAPBadCsum   = desc("vxwire_tap_bad_checksum_total", "TCP segments to a container not coalesced because of a bad checksum.", "network", "endpoint")

	descWGPackets = desc("vxwire_wireguard_packets_total", "VXLAN datagrams handed to WireGuard (tx) or returned by it (rx).", "direction")
	descWGPayload = desc("vxwire_wireguard_payload_bytes_total", "Bytes of the datagrams in vxwire_wireguard_packets_total, without inner headers.", "direction")
	descWGInner   = desc("vxwire_wireguard_inner_packets_total", "Packets between tunnel addresses that are not VXLAN (the control plane to a peer without an underlay address) received by (rx) or sent from (tx) the daemon's inner stack.", "direction")
	descWGDrops   = desc("vxwire_wireguard_drops_total", "Datagrams and inner packets the encrypted connection dropped, by reason.", "reason")

	descDNSTransport = desc("vxwire_dns_transport_total", "DNS queries a network's resolver received, by transport (udp, tcp).", "network", "transport")
	descDNSTrunc     = desc("vxwire_dns_truncated_total", "UDP answers a network's resolver cut to the client's size, with TC set.", "network")
	descDNSRejected  = desc("vxwire_dns_tcp_rejected_total", "TCP connections a network's resolver closed at once because too many were open.", "network")

	descGRO        = desc("vxwire_udp_gro_enabled", "1 when the underlay's receiving socket gets coalesced datagrams (UDP GRO), else 0.")
	descGSOSockets = desc("vxwire_udp_gso_sockets", "Sending sockets that send with UDP GSO; a socket turns it off for good when the kernel refuses it.")
	descTxSockets  = desc("vxwire_udp_tx_sockets", "Sending sockets of the underlay.")

	deviceDescs = []*prometheus.Desc{descTAPCalls, descTAPFrames, descTAPDrops, descTAPSplit, descTAPCoalesced, descTAPBadCsum,
		descWGPackets, descWGPayload, descWGInner, descWGDrops, descDNSTransport, descDNSTrunc, descDNSRejected,
		descGRO, descGSOSockets, descTxSockets}
)

// devices sends the device metrics of st.
func (e emitter) devices(st api.Status) {
	gro := 0.0
	if st.Offload.UDPGRO {
		gro = 1
	}
	e.gauge(descGRO, gro)
	e.gauge(descGSOSockets, float64(st.Offload.GSOSockets))
	e.gauge(descTxSockets, float64(st.Offload.TxSockets))
	if wg := st.WireGuard; wg != nil {
		e.counter(descWGPackets, wg.RxPackets, rx)
		e.counter(descWGPackets, wg.TxPackets, tx)
		e.counter(descWGPayload, wg.RxBytes, rx)
		e.counter(descWGPayload, wg.TxBytes, tx)
		e.counter(descWGInner, wg.InnerRxPackets, rx)
		e.counter(descWGInner, wg.InnerTxPackets, tx)
		for reason, n := range wg.Drops {
			e.counter(descWGDrops, n, reason)
		}
	}
	for _, n := range st.Networks {
		if d := n.DNS; d != nil {
			e.counter(descDNSTransport, d.UDP, n.Name, "udp")
			e.counter(descDNSTransport, d.TCP, n.Name, "tcp")
			e.counter(descDNSTrunc, d.Truncated, n.Name)
			e.counter(descDNSRejected, d.TCPRejected, n.Name)
		}
	}
	for _, ep := range st.Endpoints {
		t := ep.TAP
		if t == nil {
			continue
		}
		e.counter(descTAPCalls, t.RxReads, ep.Network, ep.Name, rx)
		e.counter(descTAPCalls, t.TxWrites, ep.Network, ep.Name, tx)
		e.counter(descTAPFrames, t.RxFrames, ep.Network, ep.Name, rx)
		e.counter(descTAPFrames, t.TxFrames, ep.Network, ep.Name, tx)
		e.counter(descTAPDrops, t.RxDropped, ep.Network, ep.Name, rx)
		e.counter(descTAPDrops, t.TxDropped, ep.Network, ep.Name, tx)
		e.counter(descTAPSplit, t.RxSuperframes, ep.Network, ep.Name)
		e.counter(descTAPCoalesced, t.TxCoalesced, ep.Network, ep.Name)
		e.counter(descTAPBadCsum, t.TxBadChecksum, ep.Network, ep.Name)
	}
}
