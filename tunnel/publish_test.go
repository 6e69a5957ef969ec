package tunnel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

func TestRelayHeaderRoundTrip(t *testing.T) {
	for _, h := range []relayHeader{
		{proto: 6, port: 8080, target: netip.MustParseAddr("10.77.0.11")},
		{proto: 17, port: 1, target: netip.MustParseAddr("0.0.0.0")},
		{proto: 6, port: 65535, target: netip.MustParseAddr("255.255.255.255")},
	} {
		var b [relayHeaderLen]byte
		h.encode(b[:])
		var got relayHeader
		if err := got.decode(b[:]); err != nil || got != h {
			t.Errorf("decode(encode(%+v)) = %+v, %v", h, got, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("vxpr"), []byte("vxpq\x01\x06\x1f\x90\x0a\x4d\x00\x0b"),
		[]byte("vxpr\x02\x06\x1f\x90\x0a\x4d\x00\x0b"), []byte("vxpr\x01\x01\x1f\x90\x0a\x4d\x00\x0b")} {
		var h relayHeader
		if h.decode(bad) == nil {
			t.Errorf("decode(%q) accepted", bad)
		}
	}
}

// FuzzRelayHeader checks that any input either fails to decode or
// decodes to a header that encodes back to the same 12 bytes.
func FuzzRelayHeader(f *testing.F) {
	f.Add([]byte("vxpr\x01\x06\x1f\x90\x0a\x4d\x00\x0b"))
	f.Add([]byte("vxpr\x01\x11\x00\x35\x0a\x4d\x00\x0b extra"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h relayHeader
		if h.decode(b) != nil {
			return
		}
		var out [relayHeaderLen]byte
		h.encode(out[:])
		if !bytes.Equal(out[:], b[:relayHeaderLen]) {
			t.Fatalf("decode(%x) = %+v encodes to %x", b, h, out)
		}
	})
}

func TestFramedConnRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := &framedConn{Conn: fakeStream{&buf}}
	for _, d := range [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{7}, 1500)} {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 2000)
	for _, want := range []int{1, 0, 1500} {
		n, err := c.Read(got)
		if err != nil || n != want {
			t.Fatalf("Read = %d, %v; want %d", n, err, want)
		}
	}
	// A datagram longer than the buffer is truncated and the stream stays
	// in step.
	c.Write(bytes.Repeat([]byte{1}, 100))
	c.Write([]byte("next"))
	if n, err := c.Read(got[:10]); n != 10 || err != nil {
		t.Fatalf("truncated Read = %d, %v", n, err)
	}
	if n, err := c.Read(got); err != nil || string(got[:n]) != "next" {
		t.Fatalf("Read after truncation = %q, %v", got[:n], err)
	}
}

// fakeStream is a net.Conn over a buffer: writes append, reads consume.
type fakeStream struct{ b *bytes.Buffer }

func (s fakeStream) Read(p []byte) (int, error)       { return s.b.Read(p) }
func (s fakeStream) Write(p []byte) (int, error)      { return s.b.Write(p) }
func (s fakeStream) Close() error                     { return nil }
func (s fakeStream) LocalAddr() net.Addr              { return nil }
func (s fakeStream) RemoteAddr() net.Addr             { return nil }
func (s fakeStream) SetDeadline(time.Time) error      { return nil }
func (s fakeStream) SetReadDeadline(time.Time) error  { return nil }
func (s fakeStream) SetWriteDeadline(time.Time) error { return nil }

// TestRelayRefusesEncryptedNetworks: the plain relay between hosts is
// plain TCP on the underlay, so it must not carry an encrypted network's
// traffic: a peer's request for a published endpoint of an encrypted
// network is refused there, while the same request on a plain network is
// served; inside WireGuard (the tunnel relay) both are served.
func TestRelayRefusesEncryptedNetworks(t *testing.T) {
	web := netip.MustParseAddr("10.77.0.11")
	sec := netip.MustParseAddr("10.88.0.11")
	tab := &pubTable{
		local: map[pubNameKey][]netip.Addr{
			{"blue", "web"}: {web},
			{"sec", "web"}:  {sec},
		},
		ingress: map[string]config.Publish{},
		sealed:  map[string]bool{"sec": true, "blue": false},
	}
	for _, p := range []config.Publish{
		{Network: "blue", Port: 8080, Proto: "tcp", Target: "web", TargetPort: 80, Mode: config.ModeIngress},
		{Network: "sec", Port: 9090, Proto: "tcp", Target: "web", TargetPort: 80, Mode: config.ModeIngress},
	} {
		tab.ingress[p.Key()] = p
	}
	plain := &relayHeader{proto: 6, port: 8080, target: web}
	sealed := &relayHeader{proto: 6, port: 9090, target: sec}
	if _, ok := tab.relayTarget(plain, false); !ok {
		t.Error("a plain network's published endpoint is refused by the plain relay")
	}
	if _, ok := tab.relayTarget(sealed, false); ok {
		t.Error("the plain relay serves an encrypted network's endpoint in the clear")
	}
	if _, ok := tab.relayTarget(sealed, true); !ok {
		t.Error("the tunnel relay refuses an encrypted network's published endpoint")
	}
	if _, ok := tab.relayTarget(&relayHeader{proto: 6, port: 9090, target: web}, true); ok {
		t.Error("the tunnel relay serves an endpoint of another network than the publish's")
	}
}

// fakeInner is an innerDialer that records where it was asked to dial
// and fails.
type fakeInner struct{ dialed []netip.AddrPort }

func (f *fakeInner) DialTCP(_ context.Context, dst netip.AddrPort) (net.Conn, error) {
	f.dialed = append(f.dialed, dst)
	return nil, errors.New("fake inner stack")
}

// TestPublishEncryptedRemotesViaTunnel: the accepting host relays to
// another host's endpoint of an encrypted network only inside WireGuard:
// without an inner stack such an endpoint is no live target, and with one
// the dial goes to the peer's tunnel address, never to the plain relay
// on the underlay (a real listener here, which must see no connection),
// while a plain network's endpoint goes to the plain relay. Records of
// this host, of networks it does not carry or that break the rules are
// no targets.
func TestPublishEncryptedRemotesViaTunnel(t *testing.T) {
	mk := func(name string, vni uint32, subnet string, encrypted bool) *network {
		p := netip.MustParsePrefix(subnet)
		return &network{cfg: config.Network{Name: name, VNI: vni, Subnet: p, Gateway: p.Addr().Next(), Encrypted: encrypted}}
	}
	nets := map[string]*network{"blue": mk("blue", 256, "10.77.0.0/24", false), "sec": mk("sec", 257, "10.88.0.0/24", true)}
	plainLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plainLn.Close()
	plainConns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := plainLn.Accept()
			if err != nil {
				return
			}
			plainConns <- c
		}
	}()
	tunnelRelay := netip.MustParseAddrPort("100.64.0.2:4789")
	tab := &pubTable{targets: map[pubNameKey][]pubTarget{}, local: map[pubNameKey][]netip.Addr{},
		sealed:       map[string]bool{"blue": false, "sec": true},
		relays:       map[string]netip.AddrPort{"h2": netip.MustParseAddrPort(plainLn.Addr().String())},
		tunnelRelays: map[string]netip.AddrPort{"h2": tunnelRelay}}
	tab.addRemote([]gossip.Record{
		testRecord("h2", "blue", "web", "10.77.0.20", 0x20, "www"),
		testRecord("h2", "sec", "web", "10.88.0.20", 0x21),
		testRecord("h1", "blue", "web", "10.77.0.10", 0x10), // this host's own
		testRecord("h3", "red", "web", "10.99.0.5", 0x05),   // a network h1 does not carry
		testRecord("h3", "blue", "web", "10.66.0.5", 0x06),  // outside the subnet
	}, "h1", nets)
	want := []pubTarget{{ip: netip.MustParseAddr("10.77.0.20"), host: "h2"}}
	for _, k := range []pubNameKey{{"blue", "web"}, {"blue", "www"}} {
		if got := tab.targets[k]; len(got) != 1 || got[0] != want[0] {
			t.Errorf("targets of %v = %v, want %v", k, got, want)
		}
	}
	if len(tab.local) != 0 {
		t.Errorf("remote records became local targets: %v", tab.local)
	}
	secPub := &pubListener{def: config.Publish{Network: "sec", Port: 9090, Proto: "tcp", Target: "web", TargetPort: 80, Mode: config.ModeIngress},
		stats: new(pubCounters), pub: newPublisher(slog.New(slog.DiscardHandler), safe.Reporter{}, nil)}
	if got := secPub.live(tab); len(got) != 0 {
		t.Errorf("without an inner stack, an encrypted network's remote endpoint is live: %v", got)
	}
	inner := new(fakeInner)
	tab.inner = inner
	if got := secPub.live(tab); len(got) != 1 || got[0].ip != netip.MustParseAddr("10.88.0.20") {
		t.Fatalf("with an inner stack, live targets of sec = %v, want 10.88.0.20 on h2", got)
	}
	secPub.pub.table.Store(tab)
	if up := secPub.dialTarget(config.ProtoTCP); up != nil {
		t.Fatal("the fake inner stack's dial succeeded")
	}
	if len(inner.dialed) != 1 || inner.dialed[0] != tunnelRelay {
		t.Errorf("dials inside wireguard: %v, want one to %v", inner.dialed, tunnelRelay)
	}
	select {
	case c := <-plainConns:
		c.Close()
		t.Error("an encrypted network's connection reached the plain relay on the underlay")
	case <-time.After(100 * time.Millisecond):
	}
	// The probe: a plain network's target dials the plain relay.
	bluePub := &pubListener{def: config.Publish{Network: "blue", Port: 8080, Proto: "tcp", Target: "web", TargetPort: 80, Mode: config.ModeIngress},
		stats: new(pubCounters), pub: secPub.pub}
	go bluePub.dialTarget(config.ProtoTCP)
	select {
	case c := <-plainConns:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Error("a plain network's connection did not reach the plain relay")
	}
	if len(inner.dialed) != 1 {
		t.Errorf("a plain network's connection dialled inside wireguard: %v", inner.dialed)
	}
}

// TestCandidatesRoundRobin: connections take turns over the live targets,
// and counting them (Publishes, through live) takes no turn.
func TestCandidatesRoundRobin(t *testing.T) {
	a, b := netip.MustParseAddr("10.77.0.11"), netip.MustParseAddr("10.77.0.12")
	tab := &pubTable{targets: map[pubNameKey][]pubTarget{{"blue", "web"}: {{ip: a}, {ip: b}}}}
	pl := &pubListener{def: config.Publish{Network: "blue", Target: "web", Mode: config.ModeIngress}}
	var got []netip.Addr
	for range 4 {
		got = append(got, pl.candidates(tab)[0].ip)
		if n := len(pl.live(tab)); n != 2 {
			t.Fatalf("live targets = %d, want 2", n)
		}
	}
	if got[0] == got[1] || got[0] != got[2] || got[1] != got[3] {
		t.Errorf("first choices %v do not alternate", got)
	}
}

// TestTunnelRelayAcceptsTunnelPeersOnly: the tunnel relay accepts a
// connection from a peer's tunnel address only, not from a peer's
// underlay address, and the plain relay the other way round. The relay
// listens on loopback here, the caller's address standing for the source
// that WireGuard authenticated.
func TestTunnelRelayAcceptsTunnelPeersOnly(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, c := range []struct {
		name         string
		tunnel       bool
		peers, tPeer bool // is lo in peerIPs, in tunnelPeers
		wantRefused  string
	}{
		{"tunnel relay, tunnel peer", true, false, true, refusedRelayTarget},
		{"tunnel relay, underlay peer", true, true, false, refusedRelayPeer},
		{"plain relay, underlay peer", false, true, false, refusedRelayTarget},
		{"plain relay, tunnel peer", false, false, true, refusedRelayPeer},
	} {
		t.Run(c.name, func(t *testing.T) {
			refused := new(tally.Counts)
			pub := newPublisher(slog.New(slog.DiscardHandler), safe.Reporter{}, refused)
			pub.table.Store(&pubTable{
				peerIPs:     map[netip.Addr]bool{lo: c.peers},
				tunnelPeers: map[netip.Addr]bool{lo: c.tPeer},
				ingress:     map[string]config.Publish{},
			})
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			r := newRelayServer(pub, ln, netip.AddrPort{}, c.tunnel, "test relay")
			defer r.close()
			conn, err := net.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var b [relayHeaderLen]byte
			(&relayHeader{proto: 6, port: 8080, target: netip.MustParseAddr("10.88.0.11")}).encode(b[:])
			conn.Write(b[:])
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.ReadAll(conn)
			if got := refused.Snapshot(); got[c.wantRefused] != 1 || len(got) != 1 {
				t.Errorf("refusals %v, want one %s", got, c.wantRefused)
			}
		})
	}
}
