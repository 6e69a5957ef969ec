package tunnel

import (
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/encap"
)

// dnsEngine is hotPathEngine with a batch of 64 DNS queries from a
// (10.77.0.10) to its gateway for b, the shape dnsperf sends, and a copy of
// each query: the switch answers in place, so a loop puts them back.
func dnsEngine(tb testing.TB) (*Engine, *port, *batch, [][]byte) {
	e, _ := hotPathEngine(tb)
	p := e.ports[epKey{"blue", "a"}]
	if p.net.dns == nil {
		tb.Fatal("network blue serves no DNS")
	}
	q := dnsQueryFrame(tb, p.mac, netip.MustParseAddr("10.77.0.10"), netip.MustParseAddr("10.77.0.1"),
		p.net.gw.mac, "b")
	b := e.sw.poolFor(p.net.mtu).get()
	orig := make([][]byte, 64)
	for i := range orig {
		orig[i] = q
	}
	refill(b, orig)
	return e, p, b, orig
}

// refill puts the queries back into b.
func refill(b *batch, orig [][]byte) {
	for i, q := range orig {
		b.sizes[i] = copy(b.bufs[i][encap.HeaderLen:], q)
	}
}

// TestSwitchDNSAllocs guards the switch's hand-off of DNS queries to the
// resolver: a batch of queries is answered without an allocation, each
// query answered once.
func TestSwitchDNSAllocs(t *testing.T) {
	e, p, b, orig := dnsEngine(t)
	e.sw.switchFromPort(p, b, 64) // warm the scratch
	before := p.net.dns.Stats().NoError
	n := testing.AllocsPerRun(100, func() {
		refill(b, orig)
		e.sw.switchFromPort(p, b, 64)
	})
	if n != 0 {
		t.Fatalf("answering a batch of DNS queries allocates %.1f times", n)
	}
	// AllocsPerRun runs the function once more than it measures.
	if got := p.net.dns.Stats().NoError - before; got != 101*64 {
		t.Fatalf("%d queries answered, want %d", got, 101*64)
	}
}

// BenchmarkSwitchDNS measures the switch answering a batch of 64 DNS
// queries from a container to its gateway (parse, lookup, answer, header
// rewrite), without the TAP reads and writes.
func BenchmarkSwitchDNS(b *testing.B) {
	e, p, bt, orig := dnsEngine(b)
	b.ReportAllocs()
	for b.Loop() {
		refill(bt, orig)
		e.sw.switchFromPort(p, bt, 64)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/query")
}
