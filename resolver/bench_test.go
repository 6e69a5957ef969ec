package resolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// staticNames is a Names over a prebuilt map that does not allocate, so
// benchmarks and allocation tests measure the server alone.
type staticNames struct {
	fwd map[string][]netip.Addr
	rev map[netip.Addr][]string
}

func (n staticNames) Lookup(_, name string) []netip.Addr         { return n.fwd[name] }
func (n staticNames) Reverse(_ string, addr netip.Addr) []string { return n.rev[addr] }

func benchNames() staticNames {
	n := staticNames{fwd: map[string][]netip.Addr{}, rev: map[netip.Addr][]string{}}
	f := testNames()
	for name, addrs := range f.fwd["net1"] {
		n.fwd[name] = addrs
	}
	for a, names := range f.rev["net1"] {
		n.rev[a] = names
	}
	return n
}

var benchQueries = []struct {
	name  string
	qname string
	qtype uint16
}{
	{"A", "web.", dns.TypeA},
	{"A-qualified", "web.net1.", dns.TypeA},
	{"A-service3", "api.", dns.TypeA},
	{"NXDOMAIN", "nope.", dns.TypeA},
	{"NODATA", "web.", dns.TypeAAAA},
	{"PTR", "2.0.77.10.in-addr.arpa.", dns.TypePTR},
}

// BenchmarkAnswer measures the wire path the UDP loop runs per query.
func BenchmarkAnswer(b *testing.B) {
	srv := New(nil, nil, benchNames(), testConfig(), nil)
	for _, bq := range benchQueries {
		b.Run(bq.name, func(b *testing.B) {
			m := newQuery(bq.qname, bq.qtype)
			m.SetEdns0(1232, false)
			msg := mustPack(b, m)
			out := make([]byte, 0, maxMsgSize)
			var q query
			b.ReportAllocs()
			for b.Loop() {
				if resp, _, _ := srv.answer(msg, out, udp, netip.Addr{}, &q); len(resp) < headerLen {
					b.Fatal("no answer")
				}
			}
		})
	}
}

// BenchmarkHandler measures the dns.Handler (which packs the parsed
// message first) with a recorder that keeps the bytes without parsing.
func BenchmarkHandler(b *testing.B) {
	srv := New(nil, nil, benchNames(), testConfig(), nil)
	h := srv.Handler()
	for _, bq := range benchQueries {
		b.Run(bq.name, func(b *testing.B) {
			m := newQuery(bq.qname, bq.qtype)
			w := &countingWriter{recorder: newRecorder("udp")}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(w, m)
			}
			if w.n == 0 {
				b.Fatal("no answer")
			}
		})
	}
}

type countingWriter struct {
	*recorder
	n int
}

func (w *countingWriter) Write(b []byte) (int, error) { w.n++; return len(b), nil }

// TestAnswerAllocs guards the wire path: no allocation per query, for a
// local name, a qualified one, a reverse one or a name for the upstreams
// (before Names got a view of the query's name, each lookup copied it).
func TestAnswerAllocs(t *testing.T) {
	srv := New(nil, nil, benchNames(), testConfig(), nil)
	for _, tt := range []struct {
		qname  string
		qtype  uint16
		allocs float64
	}{
		{"web.", dns.TypeA, 0},
		{"api.", dns.TypeA, 0},
		{"web.net1.", dns.TypeA, 0}, // the full name, then NAME
		{"2.0.77.10.in-addr.arpa.", dns.TypePTR, 0},
		{"example.com.", dns.TypeA, 0}, // looked up as a dotted alias, then refused
		{"nope.", dns.TypeA, 0},
		{"web.", dns.TypeAAAA, 0},
	} {
		t.Run(tt.qname, func(t *testing.T) {
			msg := mustPack(t, newQuery(tt.qname, tt.qtype))
			out := make([]byte, 0, maxMsgSize)
			var q query
			got := testing.AllocsPerRun(200, func() { srv.answer(msg, out, udp, netip.Addr{}, &q) })
			if got > tt.allocs {
				t.Errorf("%v allocs per query, want ≤ %v", got, tt.allocs)
			}
		})
	}
}

// TestAnswerWithScratchAllocs guards the entry points the switch calls:
// with the caller's Scratch, answering a local name, a qualified one and
// one for another server allocates nothing, and the answers are built.
func TestAnswerWithScratchAllocs(t *testing.T) {
	srv := New(nil, nil, benchNames(), testConfig(), nil)
	var sc Scratch
	out := make([]byte, 0, maxMsgSize)
	client := netip.MustParseAddr("10.77.0.2")
	for _, qname := range []string{"web.", "web.net1."} {
		msg := mustPack(t, newQuery(qname, dns.TypeA))
		for name, f := range map[string]func() ([]byte, bool){
			"AnswerLocalWith": func() ([]byte, bool) { return srv.AnswerLocalWith(&sc, client, msg, out) },
			"AnswerOwnWith":   func() ([]byte, bool) { return srv.AnswerOwnWith(&sc, client, msg, out) },
		} {
			if resp, ok := f(); !ok || len(resp) <= len(msg) {
				t.Fatalf("%s(%s): no answer", name, qname)
			}
			if n := testing.AllocsPerRun(200, func() { f() }); n != 0 {
				t.Errorf("%s(%s) allocates %v times per query", name, qname, n)
			}
		}
	}
}
