package metrics

import (
	"reflect"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// TestDoorCountersExported fills every counter of a published port and of
// the SOCKS5 proxy with a distinct value and checks that each reaches a
// metric, so a counter added to the API without a metric fails here.
func TestDoorCountersExported(t *testing.T) {
	pub := api.Publish{PublishSpec: api.PublishSpec{Network: "blue", Proto: "tcp", Port: 8080, Listen: "198.18.0.1"}, Targets: 3}
	pubVals := distinct(&pub, 4000)
	pub.Active = 4100
	pubVals = append(pubVals, 4100, 3)
	socks := api.SocksStatus{Listen: "127.0.0.1:1080"}
	socksVals := distinct(&socks, 5000)
	src := &fakeSource{}
	src.step(1)
	src.st.Publishes = []api.Publish{pub}
	src.st.Socks = &socks
	src.st.Peers[0].PathMTU = 1380
	src.st.Failed = []api.FailedEndpoint{{Network: "blue", Name: "x"}}
	got := scrape(t, handlerFor(newCollector(src)))

	if n := reflect.TypeFor[api.SocksStatus]().NumField() - 1; len(socksVals) != n { // all but Listen
		t.Fatalf("filled %d SOCKS5 counters, the type has %d", len(socksVals), n)
	}
	for _, v := range pubVals {
		if !seen(got, "vxwire_publish_", "listen=198.18.0.1,network=blue,port=8080,proto=tcp", v) {
			t.Errorf("publish counter with value %d reaches no vxwire_publish_ metric of blue tcp/8080", v)
		}
	}
	for _, v := range socksVals {
		if !seen(got, "vxwire_socks_", "", v) {
			t.Errorf("SOCKS5 counter with value %d reaches no vxwire_socks_ metric", v)
		}
	}
	for k, want := range map[string]float64{
		"vxwire_peer_path_mtu{peer=h2}": 1380,
		"vxwire_failed_endpoints{}":     1,
		"vxwire_publish_bytes_total{direction=in,listen=198.18.0.1,network=blue,port=8080,proto=tcp}": float64(pub.BytesIn),
		"vxwire_socks_clients_total{outcome=over_limit}":                                              float64(socks.OverLimit),
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if _, ok := got["vxwire_peer_path_mtu{peer=h3}"]; ok {
		t.Error("a peer whose path MTU is unknown has a vxwire_peer_path_mtu series")
	}
}
