package metrics

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// distinct sets every uint64 field of the struct v points to a value of
// its own, from base up, and returns the values set.
func distinct(v any, base uint64) []uint64 {
	rv := reflect.ValueOf(v).Elem()
	var out []uint64
	for i := range rv.NumField() {
		if f := rv.Field(i); f.Kind() == reflect.Uint64 {
			f.SetUint(base + uint64(i))
			out = append(out, base+uint64(i))
		}
	}
	return out
}

// seen reports whether a series of got whose name starts with prefix and
// whose labels contain labels has the value v.
func seen(got map[string]float64, prefix, labels string, v uint64) bool {
	for k, x := range got {
		if strings.HasPrefix(k, prefix) && strings.Contains(k, labels) && x == float64(v) {
			return true
		}
	}
	return false
}

// TestDeviceCountersExported fills every TAP, WireGuard and DNS counter of the
// status with a distinct value and checks that each reaches a metric, so a
// counter added to the API without a metric fails here.
func TestDeviceCountersExported(t *testing.T) {
	var tapStats api.TAPStats
	tapVals := distinct(&tapStats, 1000)
	wg := api.WireGuardStats{Drops: map[string]uint64{"bad_checksum": 7, "unknown_source": 9}}
	wgVals := distinct(&wg, 2000)
	src := &fakeSource{}
	src.step(1)
	src.st.Endpoints[0].TAP = &tapStats
	src.st.WireGuard = &wg
	src.st.Offload = api.Offload{UDPGRO: true, GSOSockets: 3, TxSockets: 4}
	var dnsStats api.DNSStats
	dnsVals := distinct(&dnsStats, 3000)
	src.st.Networks[1].DNS = &dnsStats
	got := scrape(t, handlerFor(newCollector(src)))

	for _, v := range tapVals {
		if !seen(got, "vxwire_tap_", "endpoint=web,network=blue", v) {
			t.Errorf("TAP counter with value %d reaches no vxwire_tap_ metric of blue/web", v)
		}
	}
	for _, v := range wgVals {
		if !seen(got, "vxwire_wireguard_", "direction=", v) {
			t.Errorf("WireGuard counter with value %d reaches no vxwire_wireguard_ metric", v)
		}
	}
	for _, v := range dnsVals {
		if !seen(got, "vxwire_dns_", "network=red", v) {
			t.Errorf("DNS counter with value %d reaches no vxwire_dns_ metric of red", v)
		}
	}
	want := map[string]float64{
		"vxwire_dns_transport_total{network=red,transport=tcp}":                float64(dnsStats.TCP),
		"vxwire_dns_tcp_rejected_total{network=red}":                           float64(dnsStats.TCPRejected),
		"vxwire_tap_drops_total{direction=tx,endpoint=web,network=blue}":       float64(tapStats.TxDropped),
		"vxwire_tap_drops_total{direction=rx,endpoint=web,network=blue}":       float64(tapStats.RxDropped),
		"vxwire_wireguard_drops_total{reason=bad_checksum}":                    7,
		"vxwire_wireguard_drops_total{reason=unknown_source}":                  9,
		"vxwire_wireguard_packets_total{direction=rx}":                         float64(wg.RxPackets),
		"vxwire_udp_gro_enabled{}":                                             1,
		"vxwire_udp_gso_sockets{}":                                             3,
		"vxwire_udp_tx_sockets{}":                                              4,
		"vxwire_tap_coalesced_frames_total{endpoint=web,network=blue}":         float64(tapStats.TxCoalesced),
		"vxwire_tap_superframes_total{endpoint=web,network=blue}":              float64(tapStats.RxSuperframes),
		"vxwire_tap_bad_checksum_total{endpoint=web,network=blue}":             float64(tapStats.TxBadChecksum),
		"vxwire_wireguard_payload_bytes_total{direction=tx}":                   float64(wg.TxBytes),
		"vxwire_tap_syscalls_total{direction=rx,endpoint=web,network=blue}":    float64(tapStats.RxReads),
		"vxwire_tap_frames_total{direction=tx,endpoint=web,network=blue}":      float64(tapStats.TxFrames),
		"vxwire_endpoint_frames_total{direction=rx,endpoint=web,network=blue}": 7,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// An endpoint without TAP counters and a host without a key export
	// none.
	for k := range got {
		if strings.Contains(k, "endpoint=db,") && strings.HasPrefix(k, "vxwire_tap_") {
			t.Errorf("%s exported for an endpoint without TAP counters", k)
		}
	}
	src.step(1) // a status without WireGuard counters: no key
	if _, ok := scrape(t, handlerFor(newCollector(src)))["vxwire_wireguard_packets_total{direction=rx}"]; ok {
		t.Error("WireGuard metrics exported for a host without a key")
	}
}
