package tunnel

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// recordConn is an encap.Conn that keeps copies of what it sends, and
// the length of each datagram in each Write.
type recordConn struct {
	discardConn
	mu     sync.Mutex
	dgram  [][]byte
	writes [][]int
}

func (c *recordConn) Write(bufs [][]byte, _ netip.AddrPort) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var w []int
	for _, b := range bufs {
		w = append(w, len(b))
		c.dgram = append(c.dgram, append([]byte(nil), b...))
	}
	c.writes = append(c.writes, w)
	return nil
}

// recordDevice is a tap.Device that keeps copies of what it is given.
type recordDevice struct {
	discardDevice
	frames [][]byte
}

func (d *recordDevice) Write(frames [][]byte) (int, error) {
	for _, f := range frames {
		d.frames = append(d.frames, append([]byte(nil), f...))
	}
	return len(frames), nil
}

// mtuEngine is a not-started engine with endpoint a (10.77.0.10) and a
// peer h2 whose path MTU is pmtu; the switch is driven directly.
func mtuEngine(t testing.TB, pmtu int, mutate ...func(*config.Config)) (*Engine, *recordDevice, []*recordConn) {
	dir := t.TempDir()
	cfg := testConfig(t, dir, 1, 2, "blue a 10.77.0.10")
	for _, m := range mutate {
		m(cfg)
	}
	var dev *recordDevice
	var conns []*recordConn
	e, err := New(cfg, Options{
		Logger: slog.New(slog.DiscardHandler),
		Listen: func(a netip.AddrPort, _ int) (encap.Conn, error) {
			c := &recordConn{discardConn: discardConn{addr: a, closed: make(chan struct{})}}
			conns = append(conns, c)
			return c, nil
		},
		OpenPort: func(c tap.Config, _ *slog.Logger) (tap.Device, error) {
			dev = &recordDevice{discardDevice: discardDevice{closed: make(chan struct{})}}
			return dev, nil
		},
		UnderlayMTU: func(netip.Addr) (int, error) { return 1500, nil },
		PathMTU:     func(netip.AddrPort) (int, error) { return pmtu, nil },
		NewCluster:  func(gossip.Config, *slog.Logger) (*gossip.Cluster, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	e.checkPathMTU()
	return e, dev, conns
}

// mtuSender returns port a of e, the sender of the path MTU tests, and the
// MAC of a container it reaches behind peer h2.
func mtuSender(e *Engine) (*port, MAC) {
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	return e.ports[epKey{"blue", "a"}], remote
}

// discardSends replaces e's sending sockets with ones that keep nothing.
func discardSends(e *Engine) {
	for i := range e.sw.tx {
		e.sw.tx[i] = &discardConn{closed: make(chan struct{})}
	}
}

// ipFrame writes into b's slot i an Ethernet frame from src to dst
// carrying an IPv4 packet of ipLen bytes with protocol proto and DF as
// given, from 10.77.0.10 to 10.77.0.20, and returns it.
func ipFrame(b *batch, i int, dst, src MAC, ipLen int, proto byte, df bool) []byte {
	f := b.bufs[i][encap.HeaderLen : encap.HeaderLen+ether.HeaderLen+ipLen]
	clear(f)
	(&EthHeader{Dst: dst, Src: src, Type: ether.TypeIPv4}).Encode(f)
	ip := f[ether.HeaderLen:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[ipv4.OffTotalLen:], uint16(ipLen))
	if df {
		binary.BigEndian.PutUint16(ip[ipv4.OffFlags:], 0x4000)
	}
	ip[ipv4.OffTTL], ip[ipv4.OffProto] = 64, proto
	copy(ip[ipv4.OffSrc:], []byte{10, 77, 0, 10, 10, 77, 0, 20})
	binary.BigEndian.PutUint16(ip[ipv4.OffChecksum:], ^ipv4.Checksum(ip[:20], 0))
	b.sizes[i] = len(f)
	return f
}

// synFrame writes a TCP SYN with MSS option mss into b's slot i.
func synFrame(b *batch, i int, dst, src MAC, mss uint16) []byte {
	f := ipFrame(b, i, dst, src, 44, ipv4.ProtoTCP, true)
	tcp := f[ether.HeaderLen+20:]
	tcp[12], tcp[13] = 6<<4, 0x02
	tcp[20], tcp[21] = 2, 4
	binary.BigEndian.PutUint16(tcp[22:], mss)
	return f
}

func sentTo(conns []*recordConn) [][]byte {
	var all [][]byte
	for _, c := range conns {
		c.mu.Lock()
		all = append(all, c.dgram...)
		c.mu.Unlock()
	}
	return all
}

func TestPathMTUFragNeeded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		encrypted bool
		pmtu      int
		want      int // usable MTU announced; 0: none
	}{
		{"plain 1300", false, 1300, 1250},
		{"path fits", false, 1500, 0},
		{"unknown", false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, dev, conns := mtuEngine(t, tc.pmtu)
			p, remote := mtuSender(e)
			b := e.sw.poolFor(p.net.mtu).get()
			big := ipFrame(b, 0, remote, p.mac, 1400, ipv4.ProtoUDP, true)
			orig := append([]byte(nil), big[ether.HeaderLen:ether.HeaderLen+28]...)
			ipFrame(b, 1, remote, p.mac, 1400, ipv4.ProtoUDP, false) // no DF: goes out
			ipFrame(b, 2, remote, p.mac, 1200, ipv4.ProtoUDP, true)  // fits
			e.sw.switchFromPort(p, b, 3)
			sent := sentTo(conns)
			if tc.want == 0 {
				if len(sent) != 3 || len(dev.frames) != 0 {
					t.Fatalf("sent %d, replied %d; want 3 sent, no reply", len(sent), len(dev.frames))
				}
				return
			}
			if len(sent) != 2 {
				t.Fatalf("sent %d datagrams, want 2 (the DF one held back)", len(sent))
			}
			if len(dev.frames) != 1 {
				t.Fatalf("%d frames back to the container, want the ICMP", len(dev.frames))
			}
			f := dev.frames[0]
			if MAC(f[0:6]) != p.mac || MAC(f[6:12]) != e.networks["blue"].gw.mac {
				t.Fatalf("reply from %x to %x", f[6:12], f[0:6])
			}
			ip := f[ether.HeaderLen:]
			if [4]byte(ip[ipv4.OffSrc:ipv4.OffSrc+4]) != [4]byte{10, 77, 0, 1} || [4]byte(ip[ipv4.OffDst:]) != [4]byte{10, 77, 0, 10} {
				t.Fatalf("reply %v -> %v", ip[12:16], ip[16:20])
			}
			icmp := ip[20:]
			if icmp[0] != 3 || icmp[1] != 4 || int(binary.BigEndian.Uint16(icmp[6:])) != tc.want {
				t.Fatalf("icmp % x, want type 3 code 4 mtu %d", icmp[:8], tc.want)
			}
			if string(icmp[8:36]) != string(orig) {
				t.Fatal("quote is not the dropped packet's header")
			}
			if got := p.stats.snapshot().Drops[api.DropTooBig]; got != 1 {
				t.Fatalf("too_big drops = %d, want 1", got)
			}
		})
	}
}

// TestPathMTUForgedSmall: the path MTU comes from the kernel only, but
// the kernel learns it from ICMP "fragmentation needed" that anyone on
// the underlay can forge, down to net.ipv4.route.min_pmtu (552 by
// default, lower where that is changed). Such a path slows the peer's
// flows down; it must not make the switch announce an MTU below IPv4's
// minimum or stop sending frames without DF.
func TestPathMTUForgedSmall(t *testing.T) {
	for _, tc := range []struct {
		pmtu, want int
	}{{552, 502}, {100, minIPv4MTU}, {1, minIPv4MTU}} {
		e, dev, conns := mtuEngine(t, tc.pmtu)
		p, remote := mtuSender(e)
		nv := e.sw.snap.Load().byVNI[256]
		if got := pathLimit(e.peers["h2"], nv); got != tc.want {
			t.Fatalf("path %d: limit %d, want %d", tc.pmtu, got, tc.want)
		}
		b := e.sw.poolFor(p.net.mtu).get()
		ipFrame(b, 0, remote, p.mac, 1400, ipv4.ProtoUDP, true)
		ipFrame(b, 1, remote, p.mac, 1400, ipv4.ProtoUDP, false)
		e.sw.switchFromPort(p, b, 2)
		if sent := sentTo(conns); len(sent) != 1 {
			t.Fatalf("path %d: sent %d datagrams, want the one without DF", tc.pmtu, len(sent))
		}
		if len(dev.frames) != 1 {
			t.Fatalf("path %d: %d frames back, want the ICMP", tc.pmtu, len(dev.frames))
		}
		if got := int(binary.BigEndian.Uint16(dev.frames[0][ether.HeaderLen+20+6:])); got != tc.want {
			t.Fatalf("path %d: announced mtu %d, want %d", tc.pmtu, got, tc.want)
		}
	}
}

func TestPathMTUEncryptedLimit(t *testing.T) {
	e, _, _ := mtuEngine(t, 1300)
	nv := e.sw.snap.Load().byVNI[256]
	r := e.peers["h2"]
	if got := pathLimit(r, nv); got != 1250 {
		t.Fatalf("plain limit %d, want 1250", got)
	}
	enc := *nv
	enc.encrypted = true
	if got := pathLimit(r, &enc); got != 1182 {
		t.Fatalf("encrypted limit %d, want 1182 (1300-60 padded down to 16, less 50)", got)
	}
}

func TestPathMTUClampsSYN(t *testing.T) {
	e, dev, conns := mtuEngine(t, 1300)
	p, remote := mtuSender(e)
	b := e.sw.poolFor(p.net.mtu).get()
	synFrame(b, 0, remote, p.mac, 1410)
	e.sw.switchFromPort(p, b, 1)
	sent := sentTo(conns)
	if len(sent) != 1 {
		t.Fatalf("sent %d", len(sent))
	}
	tcp := sent[0][encap.HeaderLen+ether.HeaderLen+20:]
	if got := binary.BigEndian.Uint16(tcp[22:]); got != 1210 {
		t.Fatalf("mss on the wire %d, want 1210", got)
	}
	// From the peer: the SYN a remote container sends is clamped to the
	// path back before the local container sees it.
	bufs, sizes, eps := underlayBatch(1, p.mac, netip.MustParseAddrPort("198.18.0.2:4789"))
	f := bufs[0][encap.HeaderLen:]
	f = f[:ether.HeaderLen+44]
	copy(f[ether.HeaderLen:], sent[0][encap.HeaderLen+ether.HeaderLen:])
	sizes[0] = encap.HeaderLen + len(f)
	binary.BigEndian.PutUint16(f[ether.HeaderLen+20+22:], 1460)
	var s scratch
	e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 1, false)
	if len(dev.frames) != 1 {
		t.Fatalf("%d frames delivered", len(dev.frames))
	}
	if got := binary.BigEndian.Uint16(dev.frames[0][ether.HeaderLen+20+22:]); got != 1210 {
		t.Fatalf("mss delivered %d, want 1210", got)
	}
}

func TestPathMTUShownInStatus(t *testing.T) {
	e, _, _ := mtuEngine(t, 1300)
	for _, ps := range e.Status().Peers {
		if ps.Name == "h2" && ps.PathMTU != 1300 {
			t.Fatalf("status path mtu %d", ps.PathMTU)
		}
	}
}

// writesTo returns the datagram lengths of every Write to conns since
// the last call, and forgets them.
func writesTo(conns []*recordConn) [][]int {
	var all [][]int
	for _, c := range conns {
		c.mu.Lock()
		all = append(all, c.writes...)
		c.writes = nil
		c.mu.Unlock()
	}
	return all
}

// TestPathProbeSendsLargestAlone: once per PathMTUCheck, the largest
// datagram of a batch to a peer leaves in a Write of its own, between
// those before and after it, so that the kernel sends it with DF (a GSO
// send has none) and a smaller router on the way can teach the path.
// Before this, bulk traffic went out only as GSO sends, which routers
// fragmented without a word: the path MTU stayed unknown.
func TestPathProbeSendsLargestAlone(t *testing.T) {
	e, _, conns := mtuEngine(t, 1500) // the path fits: nothing is clamped
	p, remote := mtuSender(e)
	b := e.sw.poolFor(p.net.mtu).get()
	batch := func(sizes ...int) {
		for i, n := range sizes {
			ipFrame(b, i, remote, p.mac, n, ipv4.ProtoUDP, true)
		}
		e.sw.switchFromPort(p, b, len(sizes))
	}
	dgram := func(ipLen int) int { return encap.HeaderLen + ether.HeaderLen + ipLen }
	writesTo(conns)

	// Small datagrams only: nothing to learn from, the probe stays due.
	batch(100, 100)
	if w := writesTo(conns); len(w) != 1 || len(w[0]) != 2 {
		t.Fatalf("small batch written as %v, want one write of 2", w)
	}
	batch(300, 1400, 1400, 200)
	want := [][]int{{dgram(300)}, {dgram(1400)}, {dgram(1400), dgram(200)}}
	if w := writesTo(conns); !slices.EqualFunc(w, want, slices.Equal) {
		t.Fatalf("probing batch written as %v, want %v", w, want)
	}
	// Taken: the next batch goes in one write until the next check.
	batch(1400, 1400)
	if w := writesTo(conns); len(w) != 1 {
		t.Fatalf("batch after the probe written as %v, want one write", w)
	}
	e.checkPathMTU()
	batch(1400, 1400)
	if w := writesTo(conns); len(w) != 2 {
		t.Fatalf("batch after the next check written as %v, want the probe alone and the rest", w)
	}
}

func TestSwitchFromPortPathMTUAllocs(t *testing.T) {
	e, _, _ := mtuEngine(t, 1300)
	p, remote := mtuSender(e)
	discardSends(e) // the recording conns copy; the switch must not
	b := e.sw.poolFor(p.net.mtu).get()
	fill := func() {
		for i := 0; i < 64; i++ {
			synFrame(b, i, remote, p.mac, 1460)
		}
	}
	fill()
	e.sw.switchFromPort(p, b, 64)
	if n := testing.AllocsPerRun(50, func() { fill(); e.sw.switchFromPort(p, b, 64) }); n != 0 {
		t.Fatalf("clamping path allocates %.1f times per batch", n)
	}
}

// BenchmarkSwitchFromPortClamp measures switching 64 SYNs to a peer whose
// path is smaller than the network's MTU: every frame's MSS is clamped.
func BenchmarkSwitchFromPortClamp(b *testing.B) {
	e, _, _ := mtuEngine(b, 1300)
	p, remote := mtuSender(e)
	discardSends(e)
	bt := e.sw.poolFor(p.net.mtu).get()
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < 64; i++ {
			synFrame(bt, i, remote, p.mac, 1460)
		}
		e.sw.switchFromPort(p, bt, 64)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/frame")
}

// FuzzSwitchFromPortPathMTU feeds IPv4 packets of any shape from a
// container to a peer whose path is smaller than the network's MTU, where
// the switch may clamp them or answer them with ICMP. Invariants: no
// panic, each frame counted once (received or dropped), every answer a
// valid ICMP "fragmentation needed" from the gateway, and what is sent
// never larger than the frame was.
func FuzzSwitchFromPortPathMTU(f *testing.F) {
	e, dev, conns := mtuEngine(f, 1300)
	p, remote := mtuSender(e)
	pool := e.sw.poolFor(p.net.mtu)
	b := pool.get()
	f.Add(append([]byte(nil), synFrame(b, 0, remote, p.mac, 1460)[ether.HeaderLen:]...), uint16(0))
	f.Add(append([]byte(nil), ipFrame(b, 0, remote, p.mac, 1400, ipv4.ProtoUDP, true)[ether.HeaderLen:]...), uint16(0))
	f.Add([]byte{0x46, 0, 5, 0xdc}, uint16(1400))
	f.Fuzz(func(t *testing.T, pkt []byte, pad uint16) {
		max := len(b.bufs[0]) - encap.HeaderLen - ether.HeaderLen
		n := min(len(pkt)+int(pad), max)
		fr := b.bufs[0][encap.HeaderLen : encap.HeaderLen+ether.HeaderLen+n]
		clear(fr)
		(&EthHeader{Dst: remote, Src: p.mac, Type: ether.TypeIPv4}).Encode(fr)
		copy(fr[ether.HeaderLen:], pkt)
		if len(pkt) >= 16 {
			copy(fr[ether.HeaderLen+ipv4.OffSrc:], []byte{10, 77, 0, 10}) // past the port guard
		}
		b.sizes[0] = len(fr)
		dev.frames, conns[0].dgram = nil, nil
		for _, c := range conns {
			c.dgram = nil
		}
		before := events(&p.stats)
		e.sw.switchFromPort(p, b, 1)
		if got := events(&p.stats) - before; got != 1 {
			t.Fatalf("counted %d times", got)
		}
		for _, r := range dev.frames {
			ip := r[ether.HeaderLen:]
			if len(ip) < 28 || ip[ipv4.OffProto] != ipv4.ProtoICMP || ip[20] != 3 || ip[21] != 4 ||
				ipv4.Checksum(ip[:20], 0) != 0xffff || ipv4.Checksum(ip[20:], 0) != 0xffff {
				t.Fatalf("bad answer % x", r)
			}
		}
		for _, d := range sentTo(conns) {
			if len(d)-encap.HeaderLen > len(fr) {
				t.Fatalf("sent %d bytes for a %d-byte frame", len(d)-encap.HeaderLen, len(fr))
			}
		}
	})
}

func TestSwitchFromUnderlayPathMTUAllocs(t *testing.T) {
	e, _, _ := mtuEngine(t, 1300)
	p := e.ports[epKey{"blue", "a"}]
	p.dev = &discardDevice{closed: make(chan struct{})} // the recorder copies
	bufs, sizes, eps := underlayBatch(64, p.mac, netip.MustParseAddrPort("198.18.0.2:4789"))
	var s scratch
	e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 64, false)
	if n := testing.AllocsPerRun(100, func() { e.sw.switchFromUnderlay(&s, bufs, sizes, eps, 64, false) }); n != 0 {
		t.Fatalf("switchFromUnderlay with a known path allocates %.1f times per batch", n)
	}
}
