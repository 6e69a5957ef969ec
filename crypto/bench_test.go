package crypto

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxwire/vxwire/encap"
)

// BenchmarkThroughput sends batches of 1400-byte datagrams from one Device
// to another over loopback and reports the rate at the receiver's Read.
func BenchmarkThroughput(b *testing.B) {
	const size = 1400
	mtu := func(c *Config) { c.MTU = 1500 - TunnelOverhead }
	x, y := newNode(b, 1), newNode(b, 2)
	x.start(b, mtu)
	// y's reader is replaced by a counting one.
	cfg := Config{PrivateKey: y.key, TunnelAddr: y.tunnel, ListenAddr: netip.MustParseAddr("127.0.0.1"), MTU: 1500 - TunnelOverhead}
	d, err := New(cfg, testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	y.dev = d
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs := make([][]byte, d.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, encap.MaxDatagram)
		}
		sizes := make([]int, len(bufs))
		eps := make([]netip.AddrPort, len(bufs))
		for {
			n, err := d.Read(bufs, sizes, eps)
			got.Add(int64(n))
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	b.Cleanup(func() { d.Close(); <-done })
	connect(b, x, y)

	batch := make([][]byte, x.dev.BatchSize())
	for i := range batch {
		batch[i] = vxlanDatagram(size, uint32(i))
	}
	// Establish the session.
	eventually(b, 10*time.Second, "handshake", func() bool {
		x.dev.Write(batch[:1], y.id)
		time.Sleep(10 * time.Millisecond)
		return got.Load() > 0
	})
	got.Store(0)
	b.SetBytes(int64(size * len(batch)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := x.dev.Write(batch, y.id); err != nil && !errors.Is(err, ErrQueueFull) {
			b.Fatal(err)
		}
	}
	want := int64(b.N * len(batch))
	for last, stable := int64(-1), 0; got.Load() < want && stable < 20; {
		time.Sleep(5 * time.Millisecond)
		if n := got.Load(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	recv := got.Load()
	b.ReportMetric(float64(recv*size)/elapsed.Seconds()/1e6, "rxMB/s")
	b.ReportMetric(100*float64(want-recv)/float64(want), "%lost")
	if b.N > 1000 {
		b.Logf("sender drops %v, receiver drops %v", nonzero(x.dev.Stats()), nonzero(d.Stats()))
	}
}

func nonzero(s Stats) map[string]uint64 {
	m := map[string]uint64{}
	for r, n := range s.Drops {
		if n > 0 {
			m[DropReason(r).String()] = n
		}
	}
	return m
}

// BenchmarkWrapUnwrap is the per-datagram cost of this package's own code.
func BenchmarkWrapUnwrap(b *testing.B) {
	payload := vxlanDatagram(1400, 1)
	buf := make([]byte, 2000)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n := wrap(buf, payload, srcAddr, dstAddr)
		if _, _, why := unwrap(buf[:n], dstAddr); why != DropNone {
			b.Fatal(why)
		}
	}
}
