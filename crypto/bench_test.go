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

// stageDevice is a Device with only what its data path between the caller
// and wireguard-go needs: both queues, the peer table and the memTUN, no
// WireGuard behind it. The one peer has ID id and tunnel address srcAddr;
// the local tunnel address is dstAddr.
func stageDevice() (d *Device, id netip.AddrPort) {
	id = netip.MustParseAddrPort("198.18.0.1:4789")
	d = &Device{closed: make(chan struct{}), mtu: 1500 - TunnelOverhead}
	d.txq = newQueue(queueLen, d.mtu, d.closed)
	d.rxq = newQueue(queueLen, d.mtu-InnerOverhead, d.closed)
	d.table.Store(&table{
		local: dstAddr,
		byID:  map[netip.AddrPort][4]byte{id: srcAddr},
		bySrc: map[[4]byte]source{srcAddr: {id: id, received: new(atomic.Uint64)}},
	})
	d.tun = newMemTUN(d)
	return d, id
}

// stageBufs returns n buffers of size bytes.
func stageBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// stageTx returns one transmit cycle of this package's data path, for a
// batch of maxBatch datagrams of size bytes: Device.Write (wrap into the
// queue) then memTUN.Read (into wireguard-go's buffers), on one goroutine.
func stageTx(tb testing.TB, size int) func() {
	d, id := stageDevice()
	batch := make([][]byte, maxBatch)
	for i := range batch {
		batch[i] = vxlanDatagram(size, uint32(i))
	}
	bufs := stageBufs(maxBatch, 16+2000)
	sizes := make([]int, maxBatch)
	return func() {
		if err := d.Write(batch, id); err != nil {
			tb.Fatal(err)
		}
		if n, err := d.tun.Read(bufs, sizes, 16); err != nil || n != maxBatch {
			tb.Fatal(n, err)
		}
	}
}

// stageRx returns one receive cycle for a batch of maxBatch inner packets
// of size-byte datagrams: memTUN.Write (unwrap into the queue) then
// Device.Read, on one goroutine.
func stageRx(tb testing.TB, size int) func() {
	d, _ := stageDevice()
	inner := stageBufs(maxBatch, 16+2000)
	for i, buf := range inner {
		n := wrap(buf[16:], vxlanDatagram(size, uint32(i)), srcAddr, dstAddr)
		inner[i] = buf[:16+n]
	}
	bufs := stageBufs(maxBatch, encap.MaxDatagram)
	sizes := make([]int, maxBatch)
	eps := make([]netip.AddrPort, maxBatch)
	return func() {
		if _, err := d.tun.Write(inner, 16); err != nil {
			tb.Fatal(err)
		}
		if n, err := d.Read(bufs, sizes, eps); err != nil || n != maxBatch {
			tb.Fatal(n, err)
		}
	}
}

// TestStageNoAllocs: once the queues' pkts exist, a batch through either
// direction of the data path allocates nothing.
func TestStageNoAllocs(t *testing.T) {
	for name, stage := range map[string]func(testing.TB, int) func(){"tx": stageTx, "rx": stageRx} {
		cycle := stage(t, 1400)
		cycle() // allocates the queue's pkts
		if a := testing.AllocsPerRun(100, cycle); a != 0 {
			t.Errorf("%s: a batch of %d allocates %v times", name, maxBatch, a)
		}
	}
}

// BenchmarkStageTx is stageTx per batch of 128 1400-byte datagrams.
func BenchmarkStageTx(b *testing.B) { benchStage(b, stageTx) }

// BenchmarkStageRx is stageRx per batch of 128 1400-byte datagrams.
func BenchmarkStageRx(b *testing.B) { benchStage(b, stageRx) }

func benchStage(b *testing.B, stage func(testing.TB, int) func()) {
	const size = 1400
	cycle := stage(b, size)
	cycle() // allocates the queue's pkts
	b.SetBytes(size * maxBatch)
	b.ReportAllocs()
	for b.Loop() {
		cycle()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*maxBatch), "ns/dgram")
}

// BenchmarkQueueHandoff moves pkts from a producer goroutine to a
// consumer through a queue, in batches of 32 (take, push; pop, release),
// as Device.Write and wireguard-go's TUN reader do: the cost per pkt of
// the hand-off between two goroutines, locks and wake-ups included.
func BenchmarkQueueHandoff(b *testing.B) {
	done := make(chan struct{})
	q := newQueue(queueLen, 64, done)
	total := b.N * 32
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var out [maxBatch]*pkt
		for got := 0; got < total; {
			n := q.pop(out[:], done)
			got += n
			q.release(out[:n])
		}
	}()
	var in [32]*pkt
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := waiter{q: q}
		for sent := 0; sent < len(in); {
			n := q.take(in[:len(in)-sent], &w)
			if n == 0 {
				w.spent = false
				continue
			}
			q.push(in[:n])
			sent += n
		}
		w.release()
	}
	<-finished
	b.StopTimer()
	close(done)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/pkt")
}
