package tap

// Root tests: each builds its own namespaces and TAPs, all torn down in
// t.Cleanup even on failure.
//
//	 netns vxtap-PID-N-a                                   netns vxtap-PID-N-b
//	┌───────────────────────┐                            ┌───────────────────────┐
//	│ eth0 (TAP)            │     this test process      │ eth0 (TAP)            │
//	│ 10.99.N.1/24          │◀── Wait→Read→Write ───────▶│ 10.99.N.2/24          │
//	│ default via .254      │    (two relay goroutines)  │ default via .254      │
//	└───────────────────────┘                            └───────────────────────┘

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"go.uber.org/goleak"
)

var nsSeq atomic.Int32

// requireRoot skips tb unless it runs as root.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to create network namespaces and TAP devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("skipping: needs the ip command (iproute2)")
	}
}

// newNetNS creates a fresh named namespace, deleted when tb ends, and
// returns its name and path.
func newNetNS(tb testing.TB, suffix string) (name, path string) {
	tb.Helper()
	name = fmt.Sprintf("vxtap-%d-%d-%s", os.Getpid(), nsSeq.Add(1), suffix)
	ipCmd(tb, "netns", "add", name)
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name, "/var/run/netns/" + name
}

// ipCmd runs ip with args and returns its output, failing tb on error.
func ipCmd(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testPair is two TAPs in two namespaces with frames relayed between them.
type testPair struct {
	nsA, nsB     string // names
	pathA, pathB string
	a, b         *Native
	relays       sync.WaitGroup
	split        bool // relay through ReadSplit
	// reads counts the relay's Reads from a that returned frames, cut
	// those that left a superframe half emitted behind them.
	reads, cut atomic.Int64
}

func testConfig(path string, net3 int, host byte) Config {
	return Config{
		NetNS:   path,
		MAC:     net.HardwareAddr{0x02, 0x99, 0, byte(net3), 0, host},
		Addr:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(net3), host}), 24),
		Gateway: netip.AddrFrom4([4]byte{10, 99, byte(net3), 254}),
		MTU:     1500,
	}
}

func newTestPair(tb testing.TB) *testPair {
	tb.Helper()
	return newTestPairSplit(tb, false)
}

// newTestPairSplit is newTestPair whose relays read with ReadSplit when
// split is true.
func newTestPairSplit(tb testing.TB, split bool) *testPair {
	tb.Helper()
	return newTestPairWith(tb, split, func(*Config) {})
}

// newTestPairWith is newTestPairSplit with mod applied to a's Config.
func newTestPairWith(tb testing.TB, split bool, mod func(*Config)) *testPair {
	tb.Helper()
	p := &testPair{split: split}
	p.nsA, p.pathA = newNetNS(tb, "a")
	p.nsB, p.pathB = newNetNS(tb, "b")
	k := int(nsSeq.Load())%200 + 1
	var err error
	ca := testConfig(p.pathA, k, 1)
	mod(&ca)
	if p.a, err = Create(ca, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.a.Close() })
	if p.b, err = Create(testConfig(p.pathB, k, 2), nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.b.Close() })
	p.relays.Add(2)
	go p.routineRelay(p.a, p.b)
	go p.routineRelay(p.b, p.a)
	tb.Cleanup(func() { // runs first: stop the relays before the namespaces go
		p.a.Close()
		p.b.Close()
		p.relays.Wait()
	})
	return p
}

// addr returns the address of host (1 = a, 2 = b) of the pair.
func (p *testPair) addr(host byte) netip.Addr {
	a := p.a.cfg.Addr.Addr().As4()
	a[3] = host
	return netip.AddrFrom4(a)
}

// routineRelay moves frames from src to dst until src is closed.
func (p *testPair) routineRelay(src, dst *Native) {
	defer p.relays.Done()
	const off = 50
	batch := src.BatchSize()
	bufs := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, off+ethHdrLen+src.MTU())
	}
	sizes := make([]int, batch)
	frames := make([][]byte, batch)
	tails := make([][]byte, batch)
	for range 1 << 26 { // ends when src is closed; bounded all the same
		if err := src.Wait(); err != nil {
			return
		}
		var n int
		var err error
		if p.split {
			n, err = src.ReadSplit(bufs, sizes, tails, off)
		} else {
			n, err = src.Read(bufs, sizes, off)
		}
		if err != nil {
			return
		}
		if src == p.a && n > 0 {
			p.reads.Add(1)
			if src.rd.sp.active() && src.rd.sp.seg > 0 {
				p.cut.Add(1)
			}
		}
		for i := range n {
			if p.split { // the segment is its headers and its lent payload
				sizes[i] += copy(bufs[i][off+sizes[i]:], tails[i])
			}
			frames[i] = bufs[i][off : off+sizes[i]]
		}
		if _, err := dst.Write(frames[:n]); err != nil && !errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func TestNativeCreateConfiguresLink(t *testing.T) {
	requireRoot(t)
	defer goleak.VerifyNone(t)
	name, path := newNetNS(t, "c")
	cfg := testConfig(path, 250, 7)
	cfg.MTU = 1400
	d, err := Create(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	link := ipCmd(t, "-n", name, "-o", "link", "show", "eth0")
	for _, want := range []string{"mtu 1400", "UP", "link/ether 02:99:00:fa:00:07"} {
		if !strings.Contains(link, want) {
			t.Errorf("link lacks %q: %s", want, link)
		}
	}
	if addr := ipCmd(t, "-n", name, "-o", "addr", "show", "dev", "eth0"); !strings.Contains(addr, "inet 10.99.250.7/24") {
		t.Errorf("address not set: %s", addr)
	}
	if route := ipCmd(t, "-n", name, "route", "show", "default"); !strings.Contains(route, "default via 10.99.250.254 dev eth0") {
		t.Errorf("default route not set: %q", route)
	}
	if _, err := Create(cfg, nil); err == nil || !strings.Contains(err.Error(), `cannot create tap "eth0"`) {
		t.Errorf("second Create with the same name: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "show", "eth0").CombinedOutput(); err == nil {
		t.Errorf("link still present after Close: %s", out)
	}
	if err := d.Wait(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Wait after Close = %v", err)
	}
	if _, err := d.Write([][]byte{make([]byte, 60)}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
}

func TestNativeCreateRollsBack(t *testing.T) {
	requireRoot(t)
	name, path := newNetNS(t, "r")
	// A default route that already exists makes the last step fail.
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	ipCmd(t, "-n", name, "route", "add", "default", "dev", "lo")
	_, err := Create(testConfig(path, 251, 1), nil)
	if err == nil || !strings.Contains(err.Error(), "cannot add default route") {
		t.Fatalf("Create = %v, want a route error", err)
	}
	if out, err := exec.Command("ip", "-n", name, "link", "show", "eth0").CombinedOutput(); err == nil {
		t.Errorf("link left behind after a failed Create: %s", out)
	}
	if _, err := Create(Config{NetNS: path, Addr: netip.MustParsePrefix("10.99.0.1/24"), MTU: 20}, nil); err == nil || !strings.Contains(err.Error(), "mtu") {
		t.Errorf("Create with MTU 20 = %v", err)
	}
}

func TestNativeCloseUnblocksWait(t *testing.T) {
	requireRoot(t)
	defer goleak.VerifyNone(t)
	_, path := newNetNS(t, "w")
	// Without IPv6 autoconfiguration nothing sends on the new link, so the
	// reader drains it and parks in Wait.
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Create(testConfig(path, 252, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		bufs, sizes := testBufs(8, 2000)
		for i := 0; i < 1000; i++ {
			if err := d.Wait(); err != nil {
				done <- err
				return
			}
			n, err := d.Read(bufs, sizes, 0)
			if err != nil {
				done <- err
				return
			}
			if n == 0 && i == 0 {
				close(drained)
			}
		}
		done <- errors.New("reader loop did not block")
	}()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("reader never drained the TAP")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Wait/Read after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	if st := d.Stats(); st.RxFrames != 0 {
		t.Errorf("read %d frames from a silent link", st.RxFrames)
	}
}

func TestNativeRelay(t *testing.T) {
	requireRoot(t)
	p := newTestPair(t)
	t.Run("ping", func(t *testing.T) { ping(t, p.pathA, p.addr(1), p.addr(2)) })
	t.Run("arp", func(t *testing.T) {
		neigh := ipCmd(t, "-n", p.nsA, "neigh", "show", p.addr(2).String(), "dev", "eth0")
		if !strings.Contains(neigh, p.b.cfg.MAC.String()) {
			t.Errorf("a did not resolve b's MAC %s: %q", p.b.cfg.MAC, neigh)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		transfer(t, p, p.addr(2), 32<<20, 60*time.Second)
		sa, sb := p.a.Stats(), p.b.Stats()
		t.Logf("a: %+v", sa)
		t.Logf("b: %+v", sb)
		if sa.RxSuperframes == 0 {
			t.Error("the sender's TAP delivered no TSO superframes")
		}
		if sb.TxCoalesced == 0 {
			t.Error("nothing was coalesced towards the receiver")
		}
		if drops(sa)+drops(sb) != 0 {
			t.Errorf("drops: a %d, b %d", drops(sa), drops(sb))
		}
	})
	t.Run("tcp6", func(t *testing.T) {
		a6, b6 := netip.MustParseAddr("fd99::1"), netip.MustParseAddr("fd99::2")
		ipCmd(t, "-n", p.nsA, "addr", "add", a6.String()+"/64", "dev", "eth0", "nodad")
		ipCmd(t, "-n", p.nsB, "addr", "add", b6.String()+"/64", "dev", "eth0", "nodad")
		sa, sb := p.a.Stats(), p.b.Stats()
		transfer(t, p, b6, 16<<20, 60*time.Second)
		if p.a.Stats().RxSuperframes == sa.RxSuperframes || p.b.Stats().TxCoalesced == sb.TxCoalesced {
			t.Error("IPv6 traffic was neither segmented nor coalesced")
		}
	})
	t.Run("write allocs", func(t *testing.T) {
		segs := segments(false, 20, 1448, 1448, testTSOpts)
		segs = append(segs, buildTCP(tcpSpec{payload: pattern(10, 1), flags: tcpFlagACK | tcpFlagPSH}))
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := p.a.Write(segs); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocations per Write, want 0", allocs)
		}
	})
	p.a.Close()
	p.b.Close()
	for _, n := range []string{p.nsA, p.nsB} {
		if out, err := exec.Command("ip", "-n", n, "link", "show", "eth0").CombinedOutput(); err == nil {
			t.Errorf("link still in %s after Close: %s", n, out)
		}
	}
}

// ping sends ICMP echo requests from a raw socket in the namespace at
// path and waits for a reply from dst.
func ping(tb testing.TB, path string, src, dst netip.Addr) {
	tb.Helper()
	var pc net.PacketConn
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		var err error
		pc, err = net.ListenPacket("ip4:icmp", src.String())
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	req := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'v', 'x', 't', 'a', 'p'}
	binaryPutCsum(req)
	buf := make([]byte, 1500)
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 0; attempt < 20 && time.Now().Before(deadline); attempt++ {
		if _, err := pc.WriteTo(req, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			tb.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		for i := 0; i < 10; i++ {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			if n >= 8 && buf[0] == 0 && buf[4] == 0x12 && buf[5] == 0x34 && from.String() == dst.String() {
				return
			}
		}
	}
	tb.Fatalf("no echo reply from %s", dst)
}

func binaryPutCsum(icmp []byte) {
	c := ^refChecksum(icmp)
	icmp[2], icmp[3] = byte(c>>8), byte(c)
}

// transfer sends size bytes of random data over TCP from namespace a to
// dst in b and checks that b received the same bytes (SHA-256).
func transfer(tb testing.TB, p *testPair, dst netip.Addr, size int64, limit time.Duration) {
	tb.Helper()
	var ln net.Listener
	err := ns.WithNetNSPath(p.pathB, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(dst, 0).String())
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(limit)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		got <- r
	}()
	var c net.Conn
	err = ns.WithNetNSPath(p.pathA, func(ns.NetNS) error {
		var err error
		c, err = (&net.Dialer{Timeout: 10 * time.Second}).Dial("tcp", ln.Addr().String())
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	c.SetDeadline(deadline)
	h := sha256.New()
	src := io.LimitReader(rand.NewChaCha8([32]byte{1, 2, 3}), size)
	n, err := io.Copy(io.MultiWriter(c, h), src)
	c.Close()
	if err != nil || n != size {
		tb.Fatalf("sent %d of %d bytes: %v", n, size, err)
	}
	r := <-got
	if r.err != nil || r.n != size {
		tb.Fatalf("received %d of %d bytes: %v", r.n, size, r.err)
	}
	if want := h.Sum(nil); string(want) != string(r.sum[:]) {
		tb.Fatal("received data differs from sent data (SHA-256)")
	}
}

func BenchmarkRelay(b *testing.B) {
	requireRoot(b)
	p := newTestPair(b)
	ping(b, p.pathA, p.addr(1), p.addr(2))
	a0, b0 := p.a.Stats(), p.b.Stats()
	b.ReportAllocs()
	b.SetBytes(1 << 20)
	b.ResetTimer()
	transfer(b, p, p.addr(2), int64(b.N)<<20, 5*time.Minute)
	b.StopTimer()
	sa, sb := p.a.Stats(), p.b.Stats()
	reads := sa.RxReads - a0.RxReads
	writes := sb.TxWrites - b0.TxWrites
	if reads > 0 && writes > 0 {
		b.ReportMetric(float64(sa.RxFrames-a0.RxFrames)/float64(reads), "frames/read")
		b.ReportMetric(float64(sb.TxFrames-b0.TxFrames)/float64(writes), "frames/write")
	}
	b.Logf("sender tap: %d reads, %d superframes, %d frames; receiver tap: %d writes, %d frames (%d coalesced)",
		reads, sa.RxSuperframes-a0.RxSuperframes, sa.RxFrames-a0.RxFrames,
		writes, sb.TxFrames-b0.TxFrames, sb.TxCoalesced-b0.TxCoalesced)
}

// TestNativeIdleMemory parks a reader on each of many idle TAPs and checks
// that they hold no superframe buffers: the heap per device stays far
// below one 64 KiB buffer.
// TestNativeGSOMaxSegs: a TAP made with GSOMaxSegs caps the TSO
// superframes its container hands it at that many segments, and the link
// says so; the probe is TestNativeRelay's tcp, whose superframes are
// larger.
func TestNativeGSOMaxSegs(t *testing.T) {
	requireRoot(t)
	const segs = 4
	p := newTestPairWith(t, false, func(c *Config) { c.GSOMaxSegs = segs })
	if link := ipCmd(t, "-n", p.nsA, "-d", "link", "show", "eth0"); !strings.Contains(link, fmt.Sprintf("gso_max_segs %d ", segs)) {
		t.Fatalf("link a: %s", link)
	}
	transfer(t, p, p.addr(2), 8<<20, 60*time.Second)
	sa := p.a.Stats()
	t.Logf("a: %+v", sa)
	// Frames outside superframes (the handshake, acks, the last
	// segment) count in RxFrames too; a few dozen at most.
	if sa.RxSuperframes == 0 || sa.RxFrames > segs*sa.RxSuperframes+64 {
		t.Errorf("%d frames came in %d superframes, want at most %d each", sa.RxFrames, sa.RxSuperframes, segs)
	}
}

// TestNativeReadKeepsSuperframesWhole: a Read that holds frames already
// does not start a superframe whose segments do not all fit: it leaves it
// whole for the next Read, so that no batch ends inside one. With
// superframes of up to 4 segments and batches of 6, every Read after the
// first superframe would otherwise cut the next in two. The probe: the
// transfer arrives intact, through superframes.
func TestNativeReadKeepsSuperframesWhole(t *testing.T) {
	requireRoot(t)
	for _, split := range []bool{false, true} {
		p := newTestPairWith(t, split, func(c *Config) { c.GSOMaxSegs, c.Batch = 4, 6 })
		transfer(t, p, p.addr(2), 8<<20, 60*time.Second)
		sa := p.a.Stats()
		if sa.RxSuperframes == 0 {
			t.Fatalf("split %v: no superframes came from the container", split)
		}
		if c := p.cut.Load(); c != 0 {
			t.Errorf("split %v: %d of %d Reads ended inside a superframe", split, c, p.reads.Load())
		}
	}
}

func TestNativeIdleMemory(t *testing.T) {
	requireRoot(t)
	const devices = 100
	_, path := newNetNS(t, "m")
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	var drained atomic.Int32
	devs := make([]*Native, 0, devices)
	defer func() {
		for _, d := range devs {
			d.Close()
		}
		wg.Wait()
	}()
	for i := range devices {
		d, err := Create(Config{
			NetNS: path,
			Name:  fmt.Sprintf("tap%d", i),
			Addr:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, 253, byte(i + 1)}), 32),
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs, sizes := [][]byte{nil}, []int{0} // Read must not need to copy anything
			for j := 0; j < 1000; j++ {
				if d.Wait() != nil {
					return
				}
				if n, err := d.Read(bufs, sizes, 0); err != nil || n != 0 {
					return
				}
				if j == 0 {
					drained.Add(1)
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); drained.Load() < devices; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d readers drained their TAP", drained.Load(), devices)
		}
		runtime.Gosched()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perDev := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / devices
	t.Logf("heap per idle device: %d bytes", perDev)
	if perDev > 16<<10 {
		t.Errorf("idle device holds %d heap bytes, want < 16 KiB", perDev)
	}
}

// drops is the number of frames a device dropped in either direction.
func drops(s Stats) uint64 { return s.RxDropped + s.TxDropped }
