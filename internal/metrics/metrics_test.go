package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/safe"
)

// fakeSource is a Source whose counters the test moves.
type fakeSource struct {
	mu   sync.Mutex
	st   api.Status
	snap Snapshot
}

var _ Source = (*fakeSource)(nil)

func (f *fakeSource) Status() api.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeSource) Metrics() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

// step advances every counter of the source by n.
func (f *fakeSource) step(n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = testStatus(n)
	f.snap = Snapshot{DNSQueries: map[string]map[string]uint64{
		"blue": {"noerror": 10 * n, "forwarded": 2 * n}, "red": {"nxdomain": n},
	}}
}

var handshake = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testStatus(n uint64) api.Status {
	c := func(k uint64) api.Counters {
		return api.Counters{RxFrames: k * n, RxBytes: 100 * k * n, TxFrames: 2 * k * n, TxBytes: 200 * k * n,
			Drops: map[string]uint64{api.DropShort: n, api.DropUnknownVNI: k * n}}
	}
	return api.Status{
		Host: "h1", Address: "198.18.0.1:4789", Counters: c(1),
		Networks: []api.NetworkStatus{{Name: "blue", VNI: 256, FDB: 3, Counters: c(2), GatewayStats: &api.GatewayStatus{
			Counters:      api.Counters{RxFrames: 9 * n, TxFrames: 10 * n, Drops: map[string]uint64{api.DropEgressDenied: 11 * n}},
			EgressTCPOpen: 2, EgressTCPTotal: 12 * n, EgressUDPOpen: 1, EgressUDPTotal: 13 * n, DialErrors: n,
		}}, {Name: "red", VNI: 257, Counters: c(3)}},
		Peers: []api.PeerStatus{
			{Name: "h2", Counters: c(4), WireGuard: &api.WireGuardPeer{LastHandshake: handshake, KeyEpoch: 7, RxBytes: 5 * n, TxBytes: 6 * n}},
			{Name: "h3", Counters: c(5), WireGuard: &api.WireGuardPeer{}},
			{Name: "h4", Counters: c(6)},
		},
		Endpoints: []api.EndpointStatus{{Network: "blue", Name: "web", Counters: c(7)}, {Network: "blue", Name: "db", Counters: c(8)}},
		Refused:   map[string]uint64{"gossip_stranger": 4 * n},
	}
}

// scrape fetches and parses the metrics, keyed "name{l1=v1,...}" with
// labels sorted.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return parse(t, rec.Body)
}

func parse(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestScrape(t *testing.T) {
	src := &fakeSource{}
	src.step(1)
	col := newCollector(src)
	col.now = func() time.Time { return handshake.Add(90 * time.Second) }
	h := handlerFor(col)
	first := scrape(t, h)
	want := map[string]float64{
		"vxwire_host_info{address=198.18.0.1:4789,host=h1}":                    1,
		"vxwire_frames_total{direction=rx}":                                    1,
		"vxwire_bytes_total{direction=tx}":                                     200,
		"vxwire_network_frames_total{direction=rx,network=blue}":               2,
		"vxwire_network_bytes_total{direction=tx,network=red}":                 600,
		"vxwire_peer_frames_total{direction=tx,peer=h2}":                       8,
		"vxwire_peer_bytes_total{direction=rx,peer=h4}":                        600,
		"vxwire_endpoint_frames_total{direction=rx,endpoint=web,network=blue}": 7,
		"vxwire_endpoint_bytes_total{direction=tx,endpoint=db,network=blue}":   1600,
		"vxwire_drops_total{name=h1,reason=short,scope=host}":                  1,
		"vxwire_drops_total{name=red,reason=unknown_vni,scope=network}":        3,
		"vxwire_drops_total{name=h3,reason=unknown_vni,scope=peer}":            5,
		"vxwire_drops_total{name=blue/db,reason=unknown_vni,scope=endpoint}":   8,
		"vxwire_wireguard_handshake_age_seconds{peer=h2}":                      90,
		"vxwire_wireguard_key_epoch{peer=h2}":                                  7,
		"vxwire_wireguard_key_epoch{peer=h3}":                                  0,
		"vxwire_wireguard_bytes_total{direction=tx,peer=h2}":                   6,
		"vxwire_dns_queries_total{network=blue,result=noerror}":                10,
		"vxwire_dns_queries_total{network=red,result=nxdomain}":                1,
		"vxwire_refused_total{reason=gossip_stranger}":                         4,
		"vxwire_endpoints{network=blue}":                                       2,
		"vxwire_endpoints{network=red}":                                        0,
		"vxwire_fdb_entries{network=blue}":                                     3,
		"vxwire_gateway_frames_total{direction=tx,network=blue}":               10,
		"vxwire_drops_total{name=blue,reason=egress_denied,scope=gateway}":     11,
		"vxwire_egress_flows{network=blue,proto=tcp}":                          2,
		"vxwire_egress_flows_total{network=blue,proto=udp}":                    13,
		"vxwire_egress_dial_errors_total{network=blue}":                        1,
	}
	for k, v := range want {
		if got, ok := first[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, absent := range []string{
		"vxwire_wireguard_handshake_age_seconds{peer=h3}", // never shook hands
		"vxwire_wireguard_key_epoch{peer=h4}",             // not on the encrypted path
	} {
		if _, ok := first[absent]; ok {
			t.Errorf("%s present", absent)
		}
	}

	src.step(3)
	second := scrape(t, h)
	moved := 0
	for k, v := range first {
		if name := strings.SplitN(k, "{", 2)[0]; !strings.HasPrefix(name, "vxwire_") || !strings.HasSuffix(name, "_total") {
			continue
		}
		switch {
		case second[k] > v:
			moved++
		case v != 0:
			t.Errorf("counter %s did not move: %v then %v", k, v, second[k])
		}
	}
	if moved < len(want)/2 {
		t.Fatalf("only %d counters moved", moved)
	}
	if got := second["vxwire_dns_queries_total{network=blue,result=forwarded}"]; got != 6 {
		t.Fatalf("dns forwarded %v, want 6", got)
	}
}

// TestHandler scrapes through the public constructor, which adds the Go
// and process collectors.
func TestHandler(t *testing.T) {
	src := &fakeSource{}
	src.step(1)
	got := scrape(t, Handler(src))
	if _, ok := got["vxwire_frames_total{direction=tx}"]; !ok {
		t.Fatal("vxwire metrics missing")
	}
	if _, ok := got["go_goroutines{}"]; !ok {
		t.Fatal("Go runtime metrics missing")
	}
}

// TestBadLabelServesTheRest checks that a name that is not UTF-8 spoils
// only its own metric.
func TestBadLabelServesTheRest(t *testing.T) {
	src := &fakeSource{}
	src.step(1)
	src.st.Peers = append(src.st.Peers, api.PeerStatus{Name: "bad\xff"})
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got := parse(t, rec.Body)
	if _, ok := got["vxwire_peer_frames_total{direction=rx,peer=h2}"]; !ok {
		t.Fatalf("scrape with a bad label lost the good metrics (status %d)", rec.Code)
	}
}

func TestServe(t *testing.T) {
	src := &fakeSource{}
	src.step(2)
	l := slog.New(slog.DiscardHandler)
	srv, err := Serve(netip.MustParseAddrPort("127.0.0.1:0"), Handler(src), safe.Reporter{L: l})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Addr + Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	if got := parse(t, resp.Body); got["vxwire_frames_total{direction=tx}"] != 4 {
		t.Fatalf("served tx frames %v, want 4", got["vxwire_frames_total{direction=tx}"])
	}
	if _, err := Serve(netip.MustParseAddrPort(srv.Addr), Handler(src), safe.Reporter{L: l}); err == nil {
		t.Fatal("second Serve on a busy port succeeded")
	}
}
