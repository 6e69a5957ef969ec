package config

import (
	"encoding/base64"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustKey(t *testing.T, s string) [32]byte {
	t.Helper()
	k, why := parseKey(s)
	if why != keyOK {
		t.Fatalf("parseKey(%q): %v", s, why)
	}
	return k
}

func TestParseValidEncrypted(t *testing.T) {
	c := mustParse(t, "encrypted.toml", readTestdata(t, "encrypted.toml"))
	h := c.Host
	wantHost := Host{
		Name:           "h1",
		Address:        netip.MustParseAddr("10.1.0.1"),
		GossipAddress:  netip.MustParseAddr("10.1.0.1"),
		Port:           DefaultPort,
		StateDir:       DefaultStateDir,
		APISocket:      DefaultAPISocket,
		PrivateKeyFile: "/etc/vxwire/h1.key",
		SecretFile:     "/etc/vxwire/cluster.secret",
		WGPort:         51821,
		WGName:         "wg-vx.0",
		TunnelAddress:  netip.MustParseAddr("100.64.9.1"),
		RotateEvery:    90 * time.Minute,
		GossipPort:     7947,
		RaftPort:       DefaultRaftPort,
		PeerTimeout:    time.Minute,
		DNSUpstream: []netip.AddrPort{
			netip.MustParseAddrPort("192.0.2.53:53"),
			netip.MustParseAddrPort("192.0.2.54:5353"),
			netip.MustParseAddrPort("[2001:db8::53]:53"),
			netip.MustParseAddrPort("[fe80::1%eth0]:53"),
		},
		Metrics:    netip.MustParseAddrPort("127.0.0.1:9100"),
		APIGroup:   "vxwire",
		APIGID:     -1,
		FloodRate:  DefaultFloodRate,
		FloodBurst: DefaultFloodBurst,
	}
	if !h.Equal(wantHost) {
		t.Errorf("host:\n%+v\nwant\n%+v", h, wantHost)
	}
	wantPeers := []Peer{
		{Name: "h2", Address: netip.MustParseAddr("10.1.0.2"), GossipAddress: netip.MustParseAddr("10.1.0.2"), Port: DefaultPort,
			PublicKey: mustKey(t, testPubAlice), HasPublicKey: true,
			WGPort: 51821, TunnelAddress: netip.MustParseAddr("100.65.0.2")},
		{Name: "h3", Address: netip.MustParseAddr("10.2.0.3"), GossipAddress: netip.MustParseAddr("10.2.0.3"), Port: DefaultPort,
			PublicKey: mustKey(t, testPubBob), HasPublicKey: true,
			WGPort: 51822, TunnelAddress: netip.MustParseAddr("100.64.9.3")},
		{Name: "legacy", Address: netip.MustParseAddr("10.1.0.4"), GossipAddress: netip.MustParseAddr("10.1.0.4"), Port: DefaultPort,
			WGPort: 51821, TunnelAddress: netip.MustParseAddr("100.65.0.4")},
	}
	if !slices.Equal(c.Peers, wantPeers) {
		t.Errorf("peers:\n%+v\nwant\n%+v", c.Peers, wantPeers)
	}
	if got := c.Peers[1].WGAddrPort(); got != netip.MustParseAddrPort("10.2.0.3:51822") {
		t.Errorf("WGAddrPort = %v", got)
	}
	if n := c.Networks[0]; !n.Encrypted || n.Egress || n.MTU != 1390 {
		t.Errorf("network secure: %+v", n)
	}
	if n := c.Networks[1]; n.Encrypted || !n.Egress {
		t.Errorf("network plain: %+v", n)
	}
	if got := c.Endpoints[0].Aliases; !slices.Equal(got, []string{"postgres", "primary"}) {
		t.Errorf("aliases = %q", got)
	}
	if c.Host.HasPrivateKey || c.Host.Secret != nil || c.HostPublicKey() != ([32]byte{}) {
		t.Error("Parse read the key or secret files")
	}
}

func TestParseValidNewKeys(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", doc(hostBlock, peerBlock, blueBlock), func(t *testing.T, c *Config) {
			h := c.Host
			if h.WGPort != DefaultWGPort || h.WGName != DefaultWGName || h.RotateEvery != DefaultRotateEvery ||
				h.GossipPort != DefaultGossipPort || h.PeerTimeout != DefaultPeerTimeout || h.APIGID != -1 ||
				h.PrivateKeyFile != "" || h.SecretFile != "" || h.DNSUpstream != nil || h.Metrics.IsValid() || h.APIGroup != "" {
				t.Errorf("host defaults: %+v", h)
			}
			if h.TunnelAddress != netip.MustParseAddr("100.82.0.1") {
				t.Errorf("host tunnel address = %v", h.TunnelAddress)
			}
			if p := c.Peers[0]; p.WGPort != DefaultWGPort || p.HasPublicKey || p.TunnelAddress != netip.MustParseAddr("100.82.0.2") {
				t.Errorf("peer defaults: %+v", p)
			}
			if h.GossipAddress != h.Address || c.Peers[0].GossipAddress != c.Peers[0].Address {
				t.Errorf("gossip addresses %v and %v, want the addresses %v and %v", h.GossipAddress, c.Peers[0].GossipAddress, h.Address, c.Peers[0].Address)
			}
			if n := c.Networks[0]; n.Encrypted || !n.Egress {
				t.Errorf("network defaults: %+v", n)
			}
		}},
		{"peer wg port follows host wg port", doc(hostBlock, []string{`wg_port = 51000`}, peerBlock), func(t *testing.T, c *Config) {
			if got := c.Peers[0].WGAddrPort(); got != netip.MustParseAddrPort("198.18.0.2:51000") {
				t.Errorf("peer = %v", got)
			}
		}},
		{"rotation off", doc(hostBlock, []string{`rotate_every = "0"`}), func(t *testing.T, c *Config) {
			if c.Host.RotateEvery != 0 {
				t.Errorf("RotateEvery = %v", c.Host.RotateEvery)
			}
		}},
		{"duration bounds", doc(hostBlock, []string{`rotate_every = "1s"`, `peer_timeout = "1000ms"`}), func(t *testing.T, c *Config) {
			if c.Host.RotateEvery != time.Second || c.Host.PeerTimeout != time.Second {
				t.Errorf("durations: %v %v", c.Host.RotateEvery, c.Host.PeerTimeout)
			}
		}},
		{"dns upstream forms", doc(hostBlock, []string{`dns_upstream = ["::ffff:192.0.2.1", "[::ffff:192.0.2.2]:5353", "127.0.0.1:5353", "2001:db8::1"]`}), func(t *testing.T, c *Config) {
			want := []netip.AddrPort{
				netip.MustParseAddrPort("192.0.2.1:53"),
				netip.MustParseAddrPort("192.0.2.2:5353"),
				netip.MustParseAddrPort("127.0.0.1:5353"),
				netip.MustParseAddrPort("[2001:db8::1]:53"),
			}
			if !slices.Equal(c.Host.DNSUpstream, want) {
				t.Errorf("DNSUpstream = %v", c.Host.DNSUpstream)
			}
		}},
		{"empty arrays", doc(hostBlock, []string{`dns_upstream = []`}, blueBlock, []string{
			`[[endpoint]]`, `network = "blue"`, `name = "web"`, `netns = "/run/netns/c1"`, `aliases = []`,
		}), func(t *testing.T, c *Config) {
			if c.Host.DNSUpstream != nil || c.Endpoints[0].Aliases != nil {
				t.Errorf("got %v and %v", c.Host.DNSUpstream, c.Endpoints[0].Aliases)
			}
		}},
		{"metrics on all addresses", doc(hostBlock, []string{`metrics = "[::]:9100"`}), func(t *testing.T, c *Config) {
			if c.Host.Metrics != netip.MustParseAddrPort("[::]:9100") {
				t.Errorf("Metrics = %v", c.Host.Metrics)
			}
		}},
		{"explicit tunnel address avoids a derived collision", doc(hostBlock, peerBlock,
			[]string{`[[peer]]`, `name = "h3"`, `address = "198.82.0.2"`, `tunnel_address = "100.64.0.3"`}), nil},
		{"wg ports are free without keys", doc(hostBlock, []string{`port = 51820`}, peerBlock, []string{`port = 51820`}), nil},
		{"same alias in two endpoints", doc(hostBlock, blueBlock,
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "a"`, `netns = "/run/netns/c1"`, `aliases = ["api"]`},
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "b"`, `netns = "/run/netns/c2"`, `aliases = ["api"]`}), nil},
		{"encrypted, inline", doc([]string{
			`host = { name = "h1", address = "198.18.0.1", private_key_file = "/k" }`,
			`peer = [{ name = "h2", address = "198.18.0.2", public_key = "` + testPubBob + `" }]`,
			`network = [{ name = "blue", vni = 256, subnet = "10.77.0.0/24", encrypted = true }]`,
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "h1.toml", []byte(tt.in))
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestDeriveTunnelAddress(t *testing.T) {
	tests := map[string]string{
		"10.1.2.3":        "100.65.2.3",
		"198.18.0.1":      "100.82.0.1",
		"127.0.0.1":       "100.64.0.1",
		"192.168.1.10":    "100.104.1.10",
		"255.255.255.255": "100.127.255.255",
		"0.0.0.0":         "100.64.0.0",
		"::ffff:10.1.2.3": "100.65.2.3",
		"::1":             "invalid IP",
		"2001:db8::1":     "invalid IP",
	}
	for in, want := range tests {
		if got := DeriveTunnelAddress(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("DeriveTunnelAddress(%s) = %s, want %s", in, got, want)
		}
	}
	if got := DeriveTunnelAddress(netip.Addr{}); got.IsValid() {
		t.Errorf("DeriveTunnelAddress(zero) = %s", got)
	}
	// Only the low 22 bits matter, and all of them do.
	for bit := range 32 {
		v := uint32(1) << bit
		a := netip.AddrFrom4([4]byte{10 ^ byte(v>>24), byte(v >> 16), byte(v >> 8), byte(v)})
		base := DeriveTunnelAddress(netip.AddrFrom4([4]byte{10, 0, 0, 0}))
		changed := DeriveTunnelAddress(a) != base
		if changed != (bit < 22) {
			t.Errorf("bit %d: derived address changed = %v", bit, changed)
		}
		if !tunnelPrefix.Contains(DeriveTunnelAddress(a)) {
			t.Errorf("%s: derived address outside %s", a, tunnelPrefix)
		}
	}
}

func TestHostPublicKey(t *testing.T) {
	var c Config
	if c.HostPublicKey() != ([32]byte{}) {
		t.Error("HostPublicKey without a private key is not zero")
	}
	c.Host.PrivateKey, c.Host.HasPrivateKey = mustKey(t, testPrivAlice), true
	if got := c.HostPublicKey(); got != mustKey(t, testPubAlice) {
		t.Errorf("HostPublicKey = %s, want %s", encodeKey(got), testPubAlice)
	}
}

func TestParseKey(t *testing.T) {
	raw := mustKey(t, testPubBob)
	nonCanonical := []byte(testPubBob)
	nonCanonical[42]++ // 'K' → 'L': the two unused low bits become 1
	tests := []struct {
		in   string
		want keyProblem
	}{
		{testPubBob, keyOK},
		{string(nonCanonical), keyOK},
		{base64.RawStdEncoding.EncodeToString(raw[:]), keyFormat},
		{base64.URLEncoding.EncodeToString(raw[:]), keyFormat},
		{" " + testPubBob, keyFormat},
		{testPubBob[:20] + "\n" + testPubBob[20:43], keyFormat},
		{base64.StdEncoding.EncodeToString(make([]byte, 31)) + "AA", keyFormat},
		{base64.StdEncoding.EncodeToString(make([]byte, 32)), keyZero},
		{"", keyFormat},
		{strings.Repeat("0", 44), keyFormat},
		{base64.StdEncoding.EncodeToString(make([]byte, 33))[:44], keyFormat},
	}
	for _, tt := range tests {
		if _, got := parseKey(tt.in); got != tt.want {
			t.Errorf("parseKey(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if encodeKey(raw) != testPubBob {
		t.Errorf("encodeKey = %s", encodeKey(raw))
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		0:                                "0s",
		12 * time.Hour:                   "12h",
		90 * time.Minute:                 "1h30m",
		10 * time.Minute:                 "10m",
		30 * time.Second:                 "30s",
		time.Hour + 30*time.Second:       "1h0m30s",
		1500 * time.Millisecond:          "1.5s",
		time.Hour + 500*time.Millisecond: "1h0m0.5s",
	}
	for d, want := range tests {
		got := formatDuration(d)
		if got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, %v", got, back, err)
		}
	}
}

// TestEqualCoversEveryField changes one field at a time and checks that
// Equal notices, so that a field added later cannot be forgotten there.
func TestEqualCoversEveryField(t *testing.T) {
	h := Host{
		Name: "h1", Address: netip.MustParseAddr("198.18.0.1"), GossipAddress: netip.MustParseAddr("198.19.0.1"), Port: 1, StateDir: "/s", APISocket: "/a",
		MTU: 1500, PrivateKeyFile: "/k", PrivateKey: [32]byte{1}, HasPrivateKey: true, SecretFile: "/f",
		Secret: []byte("0123456789abcdef"), WGPort: 2, WGName: "wg0", TunnelAddress: netip.MustParseAddr("100.64.0.1"),
		RotateEvery: time.Hour, GossipPort: 3, RaftPort: 4, PeerTimeout: time.Second,
		DNSUpstream: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
		Metrics:     netip.MustParseAddrPort("127.0.0.1:9100"), APIGroup: "g", APIGID: 7, DockerPlugin: "/run/docker/plugins/vxwire.sock",
		EgressDeny: []EgressRule{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		FloodRate:  5, FloodBurst: 6, Procs: 3, Rootless: true, UAPIDir: "/u", BehindNAT: true,
		Socks: netip.MustParseAddrPort("127.0.0.1:1080"), SocksOverlayOnly: true,
	}
	ep := Endpoint{
		Network: "n", Name: "e", NetNS: "/n", IfName: "eth0", Address: netip.MustParseAddr("10.0.0.2"),
		MAC: []byte{2, 0, 0, 0, 0, 1}, Aliases: []string{"a"}, Handoff: true,
	}
	checkEqual(t, h, Host.Equal)
	checkEqual(t, ep, Endpoint.Equal)

	// Peer and Network must stay comparable: the engine compares them
	// with ==.
	if !reflect.TypeOf(Peer{}).Comparable() || !reflect.TypeOf(Network{}).Comparable() {
		t.Error("Peer and Network must stay comparable")
	}
}

func checkEqual[T any](t *testing.T, full T, equal func(T, T) bool) {
	t.Helper()
	if !equal(full, full) {
		t.Errorf("%T: a value is not Equal to itself", full)
	}
	rt := reflect.TypeOf(full)
	for i := range rt.NumField() {
		o := full
		f := reflect.ValueOf(&o).Elem().Field(i)
		if f.IsZero() {
			t.Fatalf("%T.%s: set it in the test", full, rt.Field(i).Name)
		}
		f.SetZero()
		if equal(full, o) || equal(o, full) {
			t.Errorf("%T.Equal ignores %s", full, rt.Field(i).Name)
		}
	}
}
