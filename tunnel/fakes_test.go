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

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/netstack"
	"github.com/vxwire/vxwire/tunnel/tap"
	"github.com/vxwire/vxwire/tunnel/tap/taptest"
	"github.com/vxwire/vxwire/tunnel/tunneltest"
)

// The fakes implement the engine's interfaces.
var (
	_ CryptoConn    = (*tunneltest.CryptoConn)(nil)
	_ GatewayDevice = (*tunneltest.Gateway)(nil)
)

// fakeHost is one engine whose every boundary is a fake: the underlay
// (encaptest), the ports (taptest), the gateways and the encrypted
// connection (tunneltest). Its fields are filled as the engine opens
// devices, so a restarted engine on the same fakeHost shows what it
// reopened.
type fakeHost struct {
	e   *Engine
	cfg *config.Config

	mu       sync.Mutex
	ports    map[string]*taptest.ChannelDevice // by netns path
	gateways map[string]*tunneltest.Gateway    // by network name
	enc      *tunneltest.CryptoConn
}

// fakeOptions returns engine options that open h's fakes on un and cn (cn
// may be nil for a host without a key).
func (h *fakeHost) options(un *encaptest.Network, cn *tunneltest.CryptoNetwork) Options {
	return Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Listen: func(a netip.AddrPort, _ int) (encap.Conn, error) { return un.Conn(a), nil },
		OpenPort: func(c tap.Config, _ *slog.Logger) (tap.Device, error) {
			d := taptest.NewChannelDevice(c.MTU, 64, 256)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.ports[c.NetNS] = d
			return d, nil
		},
		OpenGateway: func(c netstack.GatewayConfig, l *slog.Logger) (GatewayDevice, error) {
			g := tunneltest.NewGateway(c, 64, 256)
			h.mu.Lock()
			defer h.mu.Unlock()
			// The engine logs with the network's name; the gateway
			// address identifies it just as well.
			h.gateways[c.Addr.Masked().String()] = g
			return g, nil
		},
		OpenCrypto: func(c crypto.Config, _ *slog.Logger) (CryptoConn, error) {
			if cn == nil {
				return nil, fmt.Errorf("no encrypted network in this test")
			}
			enc, err := cn.Open(c)
			if err != nil {
				return nil, err
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			h.enc = enc
			return enc, nil
		},
		UnderlayMTU: func(netip.Addr) (int, error) { return 1500, nil },
		NewCluster:  func(gossip.Config, *slog.Logger) (*gossip.Cluster, error) { return nil, nil },
	}
}

// startFakeHost starts an engine for cfg on fakes, with options changed by
// mutate; it is stopped when the test ends.
func startFakeHost(tb testing.TB, un *encaptest.Network, cn *tunneltest.CryptoNetwork, cfg *config.Config, mutate ...func(*Options)) *fakeHost {
	tb.Helper()
	h := &fakeHost{
		cfg:      cfg,
		ports:    make(map[string]*taptest.ChannelDevice),
		gateways: make(map[string]*tunneltest.Gateway),
	}
	opts := h.options(un, cn)
	for _, m := range mutate {
		m(&opts)
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

func (h *fakeHost) port(tb testing.TB, netns string) *taptest.ChannelDevice {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.ports[netns]
	if d == nil {
		tb.Fatalf("no port in %s", netns)
	}
	return d
}

// gateway returns the gateway port of the network whose subnet is subnet.
func (h *fakeHost) gateway(tb testing.TB, subnet string) *tunneltest.Gateway {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gateways[subnet]
	if g == nil {
		tb.Fatalf("no gateway for %s", subnet)
	}
	return g
}

// encConfig is testConfig for a cluster whose hosts all have WireGuard
// keys (keys[i] is host i+1's private key), carrying the plain network
// blue (VNI 256) and the encrypted network sec (VNI 258, 10.79.0.0/24).
// Endpoints are "network name address".
func encConfig(tb testing.TB, dir string, idx int, keys []crypto.Key, eps ...string) *config.Config {
	tb.Helper()
	var b bytes.Buffer
	keyFile := filepath.Join(dir, fmt.Sprintf("h%d.key", idx))
	if err := os.WriteFile(keyFile, []byte(keys[idx-1].String()+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	// Hosts with peers must authenticate gossip, so the config names a
	// cluster secret even though these fakes run without gossip.
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("fake-cluster-secret-0123456789\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(&b, "[host]\nname = \"h%d\"\naddress = \"198.18.0.%d\"\nmtu = 1500\nstate_dir = %q\napi_socket = %q\nprivate_key_file = %q\nsecret_file = %q\n",
		idx, idx, filepath.Join(dir, fmt.Sprintf("state%d", idx)), filepath.Join(dir, "api.sock"), keyFile, secretFile)
	for i := range keys {
		if i+1 != idx {
			fmt.Fprintf(&b, "[[peer]]\nname = \"h%d\"\naddress = \"198.18.0.%d\"\npublic_key = %q\n", i+1, i+1, keys[i].Public().String())
		}
	}
	b.WriteString("[[network]]\nname = \"blue\"\nvni = 256\nsubnet = \"10.77.0.0/24\"\n")
	b.WriteString("[[network]]\nname = \"sec\"\nvni = 258\nsubnet = \"10.79.0.0/24\"\nencrypted = true\n")
	for _, ep := range eps {
		var netname, name, addr string
		fmt.Sscanf(ep, "%s %s %s", &netname, &name, &addr)
		ns := filepath.Join(dir, fmt.Sprintf("h%d-%s", idx, name))
		if err := os.WriteFile(ns, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "[[endpoint]]\nnetwork = %q\nname = %q\nnetns = %q\naddress = %q\n", netname, name, ns, addr)
	}
	// Load, not Parse: it reads the key file.
	path := filepath.Join(dir, fmt.Sprintf("h%d.toml", idx))
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatalf("config: %v\n%s", err, b.String())
	}
	return cfg
}

func testKeys(tb testing.TB, n int) []crypto.Key {
	tb.Helper()
	keys := make([]crypto.Key, n)
	for i := range keys {
		k, err := crypto.GenerateKey()
		if err != nil {
			tb.Fatal(err)
		}
		keys[i] = k
	}
	return keys
}

// vxlan returns a VXLAN datagram for vni holding frame.
func vxlan(vni uint32, frame []byte) []byte {
	d := make([]byte, encap.HeaderLen, encap.HeaderLen+len(frame))
	(&encap.Header{VNI: vni}).Encode(d)
	return append(d, frame...)
}

// TestEncryptedSwitching shows that an encrypted network's frames cross
// the underlay only through the encrypted connection, and that plaintext
// VXLAN claiming that network is dropped and counted while the same
// datagram for a plain network is delivered.
func TestEncryptedSwitching(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un, cn := encaptest.NewNetwork(), tunneltest.NewCryptoNetwork()
	keys := testKeys(t, 2)
	h1 := startFakeHost(t, un, cn, encConfig(t, dir, 1, keys, "sec s1 10.79.0.10", "blue a 10.77.0.10"))
	h2 := startFakeHost(t, un, cn, encConfig(t, dir, 2, keys, "sec s2 10.79.0.20", "blue c 10.77.0.20"))
	s1, s2 := h1.port(t, filepath.Join(dir, "h1-s1")), h2.port(t, filepath.Join(dir, "h2-s2"))
	c := h2.port(t, filepath.Join(dir, "h2-c"))
	m1, m2 := macOf("10.79.0.10"), macOf("10.79.0.20")
	plain2 := un.Conn(netip.MustParseAddrPort("198.18.0.2:4789")) // h2's VXLAN socket
	plainBefore := plain2.Stats().Received

	// Broadcast, then unicast to the learned MAC, both ways: all of it
	// through the encrypted connection.
	bc := frame(Broadcast, m1, "who-has")
	s1.Inject(bc)
	expectFrame(t, s2, bc)
	expectNothing(t, c)
	reply := frame(m1, m2, "is-at")
	s2.Inject(reply)
	expectFrame(t, s1, reply)
	uni := frame(m2, m1, "unicast")
	s1.Inject(uni)
	expectFrame(t, s2, uni)
	if got := h1.enc.Stats().TxPackets; got != 2 {
		t.Fatalf("h1 sent %d datagrams through the encrypted connection, want 2", got)
	}
	if got := h2.enc.Stats().RxPackets; got != 2 {
		t.Fatalf("h2 read %d datagrams from the encrypted connection, want 2", got)
	}
	if got := plain2.Stats().Received; got != plainBefore {
		t.Fatalf("%d datagrams of the encrypted network crossed the underlay in plaintext", got-plainBefore)
	}

	// A stranger on the underlay forges plaintext VXLAN for the encrypted
	// network from h1's address: dropped and counted, never delivered.
	h1Addr := netip.MustParseAddrPort("198.18.0.1:4789")
	forged := frame(Broadcast, MAC{2, 6, 6, 6, 6, 6}, "forged")
	plain2.Inject(h1Addr, vxlan(258, forged))
	waitFor(t, func() bool { return h2.e.Status().Counters.Drops[api.DropPlaintext] == 1 })
	expectNothing(t, s2)
	// The same datagram for the plain network is delivered: the path
	// works, only plaintext for an encrypted network is refused.
	plain2.Inject(h1Addr, vxlan(256, forged))
	expectFrame(t, c, forged)
	if got := h2.e.Status().Counters.Drops[api.DropPlaintext]; got != 1 {
		t.Fatalf("plaintext drops = %d after a plain-network datagram, want 1", got)
	}
}

// TestEncryptedIgnoresUnknownKey shows that a host whose key the receiver
// does not have cannot inject into an encrypted network through the
// encrypted connection, while a configured peer's identical datagram is
// delivered.
func TestEncryptedIgnoresUnknownKey(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un, cn := encaptest.NewNetwork(), tunneltest.NewCryptoNetwork()
	keys := testKeys(t, 2)
	h1 := startFakeHost(t, un, cn, encConfig(t, dir, 1, keys, "sec s1 10.79.0.10"))
	s1 := h1.port(t, filepath.Join(dir, "h1-s1"))

	// A host with a key h1 does not have, which knows h1's key and ID.
	rogueKey := testKeys(t, 1)[0]
	h1ID := netip.MustParseAddrPort("198.18.0.1:4789")
	rogue, err := cn.Open(crypto.Config{PrivateKey: rogueKey, Peers: []crypto.Peer{{PublicKey: keys[0].Public(), ID: h1ID}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	bc := vxlan(258, frame(Broadcast, MAC{2, 6, 6, 6, 6, 6}, "rogue"))
	if err := rogue.Write([][]byte{bc}, h1ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return h1.enc.Stats().Drops[crypto.DropUnknownSource] == 1 })
	expectNothing(t, s1)

	// The configured peer's identical datagram is delivered.
	h2, err := cn.Open(crypto.Config{PrivateKey: keys[1], Peers: []crypto.Peer{{PublicKey: keys[0].Public(), ID: h1ID}}})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if err := h2.Write([][]byte{bc}, h1ID); err != nil {
		t.Fatal(err)
	}
	expectFrame(t, s1, bc[encap.HeaderLen:])
}

// TestGatewayDNS asks the DNS server the engine runs on a network's gateway
// (here on the fake gateway's loopback socket) for a container's name, and
// for a name of another network, which is isolated.
func TestGatewayDNS(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1, "blue a 10.77.0.10", "red r 10.78.0.10"))
	gw := h.gateway(t, "10.77.0.0/24")
	if gw.Config.Addr != netip.MustParsePrefix("10.77.0.1/24") || gw.Config.MTU != 1450 {
		t.Fatalf("gateway opened with %+v", gw.Config)
	}
	addr, ok := gw.UDPAddr(dnsPort)
	if !ok {
		t.Fatal("nothing listens on the gateway's DNS port")
	}
	ask := func(name string) *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		r, err := dns.Exchange(q, addr.String())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return r
	}
	r := ask("a.blue.")
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.77.0.10" {
		t.Fatalf("a.blue. answered %v", r)
	}
	if r := ask("r.red."); r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
		t.Fatalf("another network's name r.red. answered %v", r)
	}
	// Both queries are in blue's DNS counters.
	st := h.e.Status()
	if d := st.Networks[0].DNS; st.Networks[0].Name != "blue" || d == nil || d.UDP != 2 || d.Queries["noerror"] != 1 || d.Queries["nxdomain"] != 1 {
		t.Fatalf("blue's DNS counters %+v", st.Networks[0].DNS)
	}
}
