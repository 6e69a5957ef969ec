package tunnel

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/tunnel/tap"
	"github.com/vxwire/vxwire/tunnel/tap/taptest"
)

// testHost is one engine on the fake underlay, with fake ports found by the
// netns path of their endpoint.
type testHost struct {
	e     *Engine
	mu    sync.Mutex
	ports map[string]*taptest.ChannelDevice
}

func (h *testHost) port(tb testing.TB, netns string) *taptest.ChannelDevice {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.ports[netns]
	if d == nil {
		tb.Fatalf("no port in %s", netns)
	}
	return d
}

// writeConfig writes a config for host idx (1-based) of a cluster of n hosts
// with the given endpoints ("name@address" on network blue, VNI 256) and
// returns the parsed config. Endpoint netns paths are files in dir.
func testConfig(tb testing.TB, dir string, idx, n int, eps ...string) *config.Config {
	tb.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "[host]\nname = \"h%d\"\naddress = \"198.18.0.%d\"\nmtu = 1500\nstate_dir = %q\napi_socket = %q\n",
		idx, idx, filepath.Join(dir, fmt.Sprintf("state%d", idx)), filepath.Join(dir, "api.sock"))
	for i := 1; i <= n; i++ {
		if i != idx {
			fmt.Fprintf(&b, "[[peer]]\nname = \"h%d\"\naddress = \"198.18.0.%d\"\n", i, i)
		}
	}
	b.WriteString("[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\n")
	b.WriteString("[[network]]\nname = \"red\"\nvni = 257\nsubnet = \"10.78.0.0/24\"\n")
	for _, ep := range eps {
		var name, addr, netname string
		fmt.Sscanf(ep, "%s %s %s", &netname, &name, &addr)
		ns := filepath.Join(dir, fmt.Sprintf("h%d-%s", idx, name))
		if err := os.WriteFile(ns, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "[[endpoint]]\nnetwork = %q\nname = %q\nnetns = %q\naddress = %q\n", netname, name, ns, addr)
	}
	cfg, err := config.Parse(fmt.Sprintf("h%d.toml", idx), b.Bytes())
	if err != nil {
		tb.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

func newTestHost(tb testing.TB, un *encaptest.Network, cfg *config.Config) *testHost {
	tb.Helper()
	h := &testHost{ports: make(map[string]*taptest.ChannelDevice)}
	opts := Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Listen: func(a netip.AddrPort, batch int) (encap.Conn, error) { return un.Conn(a), nil },
		OpenPort: func(c tap.Config, _ *slog.Logger) (tap.Device, error) {
			d := taptest.NewChannelDevice(c.MTU, 64, 256)
			h.mu.Lock()
			h.ports[c.NetNS] = d
			h.mu.Unlock()
			return d, nil
		},
		UnderlayMTU: func(netip.Addr) (int, error) { return 1500, nil },
		NewCluster:  func(gossip.Config, *slog.Logger) (*gossip.Cluster, error) { return nil, nil },
	}
	e, err := New(cfg, opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	e.Start()
	tb.Cleanup(e.Stop)
	h.e = e
	return h
}

// frame builds an Ethernet frame with an IPv4-looking payload.
// frame returns an IPv4 frame from src to dst carrying payload after a
// 20-byte IPv4 header. Its source address is the one src is derived from
// (02:76:a.b.c.d, see deriveMAC), so a port whose MAC src is may send it.
func frame(dst, src MAC, payload string) []byte {
	f := make([]byte, ether.HeaderLen+ipv4.MinHeaderLen+len(payload))
	(&EthHeader{Dst: dst, Src: src, Type: ether.TypeIPv4}).Encode(f)
	f[ether.HeaderLen] = 0x45
	copy(f[ipv4SrcOff:ipv4SrcOff+4], src[2:6])
	copy(f[ether.HeaderLen+ipv4.MinHeaderLen:], payload)
	return f
}

func macOf(a string) MAC { return deriveMAC(netip.MustParseAddr(a)) }

func expectFrame(tb testing.TB, d *taptest.ChannelDevice, want []byte) {
	tb.Helper()
	select {
	case got := <-d.Written():
		if !bytes.Equal(got, want) {
			tb.Fatalf("got frame %x, want %x", got, want)
		}
	case <-time.After(5 * time.Second):
		tb.Fatalf("no frame arrived, want %x", want)
	}
}

func expectNothing(tb testing.TB, d *taptest.ChannelDevice) {
	tb.Helper()
	select {
	case got := <-d.Written():
		tb.Fatalf("unexpected frame %x", got)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestEngineSwitching(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	h1 := newTestHost(t, un, testConfig(t, dir, 1, 2, "blue a 10.77.0.10", "blue b 10.77.0.11", "red r1 10.78.0.10"))
	h2 := newTestHost(t, un, testConfig(t, dir, 2, 2, "blue c 10.77.0.20", "red r2 10.78.0.20"))
	a, b := h1.port(t, filepath.Join(dir, "h1-a")), h1.port(t, filepath.Join(dir, "h1-b"))
	r1 := h1.port(t, filepath.Join(dir, "h1-r1"))
	c, r2 := h2.port(t, filepath.Join(dir, "h2-c")), h2.port(t, filepath.Join(dir, "h2-r2"))
	ma, mb, mc := macOf("10.77.0.10"), macOf("10.77.0.11"), macOf("10.77.0.20")

	// Broadcast reaches every port of the network, local and remote, and
	// no port of another network.
	bc := frame(Broadcast, ma, "who-has")
	a.Inject(bc)
	expectFrame(t, b, bc)
	expectFrame(t, c, bc)
	expectNothing(t, r1)
	expectNothing(t, r2)
	expectNothing(t, a)

	// The reply is unicast to a MAC h2 has learned: only a gets it.
	reply := frame(ma, mc, "is-at")
	c.Inject(reply)
	expectFrame(t, a, reply)
	expectNothing(t, b)

	// Local unicast between two ports of one host never leaves it.
	before := h2.e.Status().Counters.RxFrames
	ab := frame(mb, ma, "local")
	a.Inject(ab)
	expectFrame(t, b, ab)
	if got := h2.e.Status().Counters.RxFrames; got != before {
		t.Fatalf("local frame crossed the underlay: rx %d -> %d", before, got)
	}

	// A spoofed source MAC is dropped and counted.
	a.Inject(frame(mc, MAC{2, 9, 9, 9, 9, 9}, "spoof"))
	waitFor(t, func() bool { return h1.e.Status().Counters.Drops[api.DropSpoofed] == 1 })
	expectNothing(t, c)
}

func TestEngineDropsBadDatagrams(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	h1 := newTestHost(t, un, testConfig(t, dir, 1, 2, "blue a 10.77.0.10"))
	a := h1.port(t, filepath.Join(dir, "h1-a"))
	rx := un.Conn(netip.MustParseAddrPort("198.18.0.1:4789"))
	peerAddr := netip.MustParseAddrPort("198.18.0.2:4789")
	stranger := netip.MustParseAddrPort("198.18.0.99:4789")

	good := func(vni uint32) []byte {
		d := make([]byte, encap.HeaderLen)
		(&encap.Header{VNI: vni}).Encode(d)
		return append(d, frame(Broadcast, MAC{2, 1, 1, 1, 1, 1}, "x")...)
	}
	noI := good(256)
	noI[0] = 0
	tests := []struct {
		name   string
		src    netip.AddrPort
		data   []byte
		reason string
	}{
		{"short", peerAddr, []byte{8, 0, 0}, api.DropShort},
		{"no frame", peerAddr, good(256)[:encap.HeaderLen+5], api.DropShort},
		{"no I flag", peerAddr, noI, api.DropBadFlags},
		{"unknown vni", peerAddr, good(999), api.DropUnknownVNI},
		{"unknown peer", stranger, good(256), api.DropUnknownPeer},
		{"group source", peerAddr, append(good(256)[:encap.HeaderLen], frame(Broadcast, Broadcast, "x")...), api.DropMalformedFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h1.e.Status().Counters.Drops[tt.reason]
			rx.Inject(tt.src, tt.data)
			waitFor(t, func() bool { return h1.e.Status().Counters.Drops[tt.reason] == before+1 })
			expectNothing(t, a)
		})
	}
	// Forwarding goes on.
	ok := good(256)
	rx.Inject(peerAddr, ok)
	expectFrame(t, a, ok[encap.HeaderLen:])
}

func TestEngineReload(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	h1 := newTestHost(t, un, testConfig(t, dir, 1, 2, "blue a 10.77.0.10"))
	h2 := newTestHost(t, un, testConfig(t, dir, 2, 2, "blue c 10.77.0.20"))
	a := h1.port(t, filepath.Join(dir, "h1-a"))
	ma, mc := macOf("10.77.0.10"), macOf("10.77.0.20")
	c := h2.port(t, filepath.Join(dir, "h2-c"))
	c.Inject(frame(Broadcast, mc, "hello"))
	expectFrame(t, a, frame(Broadcast, mc, "hello"))

	// Adding an endpoint keeps the old port and its learned entries.
	if err := h1.e.Reload(testConfig(t, dir, 1, 2, "blue a 10.77.0.10", "blue b 10.77.0.11")); err != nil {
		t.Fatal(err)
	}
	if h1.port(t, filepath.Join(dir, "h1-a")) != a {
		t.Fatal("reload recreated an unchanged port")
	}
	b := h1.port(t, filepath.Join(dir, "h1-b"))
	a.Inject(frame(mc, ma, "unicast"))
	expectFrame(t, c, frame(mc, ma, "unicast"))
	expectNothing(t, b)

	// Removing the endpoint closes its port.
	if err := h1.e.Reload(testConfig(t, dir, 1, 2, "blue a 10.77.0.10")); err != nil {
		t.Fatal(err)
	}
	if err := b.Inject([]byte{1}); err == nil {
		t.Fatal("removed port still open")
	}
	if n := len(h1.e.Status().Endpoints); n != 1 {
		t.Fatalf("%d endpoints after removal, want 1", n)
	}

	// A changed [host] table is refused and the old config kept.
	bad := testConfig(t, dir, 1, 2, "blue a 10.77.0.10")
	bad.Host.Port = 4790
	if err := h1.e.Reload(bad); err == nil {
		t.Fatal("reload with a changed host table succeeded")
	}
	a.Inject(frame(mc, ma, "still"))
	expectFrame(t, c, frame(mc, ma, "still"))
}

func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestProxyARP(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	h1 := newTestHost(t, un, testConfig(t, dir, 1, 2, "blue a 10.77.0.10", "blue b 10.77.0.11"))
	a, b := h1.port(t, filepath.Join(dir, "h1-a")), h1.port(t, filepath.Join(dir, "h1-b"))
	ma := macOf("10.77.0.10")
	request := func(target string) []byte {
		f := make([]byte, ether.HeaderLen+ether.ARPLen)
		(&EthHeader{Dst: Broadcast, Src: ma, Type: ether.TypeARP}).Encode(f)
		(&ARP{Op: ether.ARPRequest, SHA: ma, SPA: netip.MustParseAddr("10.77.0.10"), TPA: netip.MustParseAddr(target)}).Encode(f[ether.HeaderLen:])
		return f
	}
	for _, tc := range []struct{ name, target, mac string }{
		{"local endpoint", "10.77.0.11", "10.77.0.11"},
		{"gateway", "10.77.0.1", "10.77.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.Inject(request(tc.target))
			select {
			case got := <-a.Written():
				var eth EthHeader
				var rep ARP
				if eth.Decode(got) != nil || rep.Decode(got[ether.HeaderLen:]) != nil {
					t.Fatalf("bad reply %x", got)
				}
				if eth.Dst != ma || rep.Op != ether.ARPReply || rep.SHA != macOf(tc.mac) || rep.SPA != netip.MustParseAddr(tc.target) {
					t.Fatalf("reply %+v %+v", eth, rep)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no ARP reply")
			}
			expectNothing(t, b)
		})
	}
	// Known addresses never crossed the underlay; unknown ones are
	// flooded as usual.
	if tx := h1.e.Status().Peers[0].Counters.TxFrames; tx != 0 {
		t.Fatalf("%d frames sent to the peer for known addresses", tx)
	}
	a.Inject(request("10.77.0.99"))
	expectFrame(t, b, request("10.77.0.99"))
	waitFor(t, func() bool { return h1.e.Status().Peers[0].Counters.TxFrames == 1 })
}
