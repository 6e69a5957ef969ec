package tunnel

import (
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// discardConn is an encap.Conn that counts what it is asked to send and
// never delivers anything, so benchmarks measure the switch alone.
type discardConn struct {
	addr   netip.AddrPort
	sent   int
	closed chan struct{}
	once   sync.Once
}

var _ encap.Conn = (*discardConn)(nil)

func (c *discardConn) Read([][]byte, []int, []netip.AddrPort) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}
func (c *discardConn) Write(bufs [][]byte, _ netip.AddrPort) error { c.sent += len(bufs); return nil }
func (c *discardConn) BatchSize() int                              { return 64 }
func (c *discardConn) LocalAddr() netip.AddrPort                   { return c.addr }
func (c *discardConn) Close() error                                { c.once.Do(func() { close(c.closed) }); return nil }

// discardDevice is a tap.Device that never has frames to read and
// swallows writes.
type discardDevice struct {
	written int
	closed  chan struct{}
	once    sync.Once
}

var _ tap.Device = (*discardDevice)(nil)

func (d *discardDevice) Wait() error                            { <-d.closed; return net.ErrClosed }
func (d *discardDevice) Read([][]byte, []int, int) (int, error) { return 0, net.ErrClosed }
func (d *discardDevice) Write(frames [][]byte) (int, error) {
	d.written += len(frames)
	return len(frames), nil
}
func (d *discardDevice) BatchSize() int { return 64 }
func (d *discardDevice) MTU() int       { return 1450 }
func (d *discardDevice) Close() error   { d.once.Do(func() { close(d.closed) }); return nil }

// hotPathEngine returns an engine on discarding fakes with endpoints a
// (10.77.0.10) and b (10.77.0.11) and one peer, not started: tests drive
// its switching functions directly.
func hotPathEngine(tb testing.TB, mutate ...func(*config.Config)) (*Engine, map[string]*discardDevice) {
	e, devs, err := tryHotPathEngine(tb, mutate...)
	if err != nil {
		tb.Fatal(err)
	}
	return e, devs
}

// tryHotPathEngine is hotPathEngine returning New's error.
func tryHotPathEngine(tb testing.TB, mutate ...func(*config.Config)) (*Engine, map[string]*discardDevice, error) {
	dir := tb.TempDir()
	devs := map[string]*discardDevice{}
	cfg := testConfig(tb, dir, 1, 2, "blue a 10.77.0.10", "blue b 10.77.0.11")
	for _, m := range mutate {
		m(cfg)
	}
	e, err := New(cfg, Options{
		Logger: slog.New(slog.DiscardHandler),
		Listen: func(a netip.AddrPort, _ int) (encap.Conn, error) {
			return &discardConn{addr: a, closed: make(chan struct{})}, nil
		},
		OpenPort: func(c tap.Config, _ *slog.Logger) (tap.Device, error) {
			d := &discardDevice{closed: make(chan struct{})}
			devs[filepath.Base(c.NetNS)] = d
			return d, nil
		},
		UnderlayMTU: func(netip.Addr) (int, error) { return 1500, nil },
		NewCluster:  func(gossip.Config, *slog.Logger) (*gossip.Cluster, error) { return nil, nil },
	})
	if err != nil {
		return nil, nil, err
	}
	tb.Cleanup(e.Stop)
	return e, devs, nil
}

// fillBatch puts n copies of a 1400-byte IPv4 frame from src to dst in b,
// with the source address src is derived from.
func fillBatch(b *batch, n int, dst, src MAC) {
	for i := 0; i < n; i++ {
		f := b.bufs[i][encap.HeaderLen : encap.HeaderLen+1400]
		(&EthHeader{Dst: dst, Src: src, Type: ether.TypeIPv4}).Encode(f)
		f[ether.HeaderLen] = 0x45
		copy(f[ipv4SrcOff:ipv4SrcOff+4], src[2:6])
		b.sizes[i] = len(f)
	}
}

func TestSwitchFromPortAllocs(t *testing.T) {
	e, _ := hotPathEngine(t)
	p := e.ports[epKey{"blue", "a"}]
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	b := e.sw.poolFor(p.net.mtu).get()
	for _, tc := range []struct {
		name string
		dst  MAC
	}{{"remote unicast", remote}, {"local unicast", macOf("10.77.0.11")}, {"broadcast", Broadcast}} {
		t.Run(tc.name, func(t *testing.T) {
			fillBatch(b, 64, tc.dst, p.mac)
			e.sw.switchFromPort(p, b, 64) // warm the scratch
			if n := testing.AllocsPerRun(100, func() { e.sw.switchFromPort(p, b, 64) }); n != 0 {
				t.Fatalf("switchFromPort allocates %.1f times per batch", n)
			}
		})
	}
}

func TestSwitchFromUnderlayAllocs(t *testing.T) {
	e, devs := hotPathEngine(t)
	src := netip.MustParseAddrPort("198.18.0.2:4789")
	bufs, sizes, eps := underlayBatch(64, macOf("10.77.0.10"), src)
	var s scratch
	e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 64, false)
	if n := testing.AllocsPerRun(100, func() { e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 64, false) }); n != 0 {
		t.Fatalf("switchFromUnderlay allocates %.1f times per batch", n)
	}
	if devs["h1-a"].written == 0 {
		t.Fatal("nothing was delivered")
	}
}

func underlayBatch(n int, dst MAC, src netip.AddrPort) ([][]byte, []int, []netip.AddrPort) {
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	eps := make([]netip.AddrPort, n)
	for i := range bufs {
		bufs[i] = make([]byte, encap.HeaderLen+1400)
		(&encap.Header{VNI: 256}).Encode(bufs[i])
		(&EthHeader{Dst: dst, Src: MAC{2, 0, 0, 0, 0, 0x20}, Type: ether.TypeIPv4}).Encode(bufs[i][encap.HeaderLen:])
		sizes[i] = len(bufs[i])
		eps[i] = src
	}
	return bufs, sizes, eps
}

// BenchmarkSwitchFromPort measures switching a batch of 64 frames from a
// container to a remote peer: ns/op divided by 64 is the cost per frame.
func BenchmarkSwitchFromPort(b *testing.B) {
	e, _ := hotPathEngine(b)
	p := e.ports[epKey{"blue", "a"}]
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	bt := e.sw.poolFor(p.net.mtu).get()
	fillBatch(bt, 64, remote, p.mac)
	b.SetBytes(64 * 1400)
	b.ReportAllocs()
	for b.Loop() {
		e.sw.switchFromPort(p, bt, 64)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// BenchmarkSwitchFromUnderlay measures switching a batch of 64 VXLAN
// datagrams to a local container.
func BenchmarkSwitchFromUnderlay(b *testing.B) {
	e, _ := hotPathEngine(b)
	bufs, sizes, eps := underlayBatch(64, macOf("10.77.0.10"), netip.MustParseAddrPort("198.18.0.2:4789"))
	var s scratch
	b.SetBytes(64 * 1400)
	b.ReportAllocs()
	for b.Loop() {
		e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 64, false)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// BenchmarkPair runs two engines on the in-memory underlay and measures
// frames from a container on one host to a container on the other,
// through both switches (the fakes copy every frame, as sockets would).
func BenchmarkPair(b *testing.B) {
	dir := b.TempDir()
	un := encaptest.NewNetworkQueue(4096)
	h1 := newTestHost(b, un, testConfig(b, dir, 1, 2, "blue a 10.77.0.10"))
	h2 := newTestHost(b, un, testConfig(b, dir, 2, 2, "blue c 10.77.0.20"))
	a := h1.port(b, filepath.Join(dir, "h1-a"))
	c := h2.port(b, filepath.Join(dir, "h2-c"))
	ma, mc := macOf("10.77.0.10"), macOf("10.77.0.20")
	// Let both sides learn each other.
	c.Inject(frame(Broadcast, mc, "hello"))
	<-a.Written()
	f := frame(mc, ma, string(make([]byte, 1400)))
	b.SetBytes(int64(len(f)))
	b.ReportAllocs()
	// The fake underlay drops datagrams when a queue is full, as a socket
	// would, so the receiver stops after 100 ms without a frame and the fraction
	// delivered is reported.
	got := make(chan int)
	go func() {
		n := 0
		for n < b.N {
			select {
			case <-c.Written():
				n++
			case <-time.After(100 * time.Millisecond):
				got <- n
				return
			}
		}
		got <- n
	}()
	for i := 0; i < b.N; i++ {
		if err := a.Inject(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(<-got)/float64(b.N), "delivered")
}
