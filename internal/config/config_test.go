package config

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// doc joins lines into a document, so that a test can see the line number
// of each key: lines[i] is line i+1.
func doc(parts ...[]string) string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return strings.Join(all, "\n") + "\n"
}

// Common blocks. hostBlock is lines 1-3 of every document that uses it.
var (
	hostBlock = []string{`[host]`, `name = "h1"`, `address = "198.18.0.1"`}
	blueBlock = []string{`[[network]]`, `name = "blue"`, `vni = 256`, `subnet = "10.77.0.0/24"`}
)

// messages returns the lines of err, one per *Error.
func messages(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if errors.As(err, &es) {
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.Error()
		}
		return out
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is neither Errors nor *Error", err, err)
	}
	return []string{e.Error()}
}

func mustParse(t *testing.T, file string, data []byte) *Config {
	t.Helper()
	c, err := Parse(file, data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseExample(t *testing.T) {
	c := mustParse(t, "h1.toml", readTestdata(t, "h1.toml"))
	want := &Config{
		File: "h1.toml",
		Host: Host{
			Name:          "h1",
			Address:       netip.MustParseAddr("198.18.0.1"),
			GossipAddress: netip.MustParseAddr("198.18.0.1"),
			Port:          4789,
			StateDir:      "/var/lib/vxwire",
			APISocket:     "/run/vxwire/vxwire.sock",
			WGPort:        51820,
			WGName:        "vxwire0",
			TunnelAddress: netip.MustParseAddr("100.82.0.1"),
			RotateEvery:   12 * time.Hour,
			GossipPort:    7946,
			RaftPort:      7948,
			PeerTimeout:   30 * time.Second,
			APIGID:        -1,
			FloodRate:     DefaultFloodRate,
			FloodBurst:    DefaultFloodBurst,
		},
		Peers: []Peer{{
			Name:          "h2",
			Address:       netip.MustParseAddr("198.18.0.2"),
			GossipAddress: netip.MustParseAddr("198.18.0.2"),
			Port:          4789,
			WGPort:        51820,
			TunnelAddress: netip.MustParseAddr("100.82.0.2"),
		}},
		Networks: []Network{{
			Name:    "blue",
			VNI:     256,
			Subnet:  netip.MustParsePrefix("10.77.0.0/24"),
			Gateway: netip.MustParseAddr("10.77.0.1"),
			Egress:  true,
		}},
		Endpoints: []Endpoint{{
			Network: "blue",
			Name:    "web",
			NetNS:   "/var/run/netns/c1",
			IfName:  "eth0",
			Address: netip.MustParseAddr("10.77.0.10"),
		}},
	}
	if !c.Equal(want) {
		t.Errorf("got\n%s\nwant\n%s", c.Encode(), want.Encode())
	}
	if c.File != "h1.toml" {
		t.Errorf("File = %q", c.File)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, c *Config)
	}{
		{"defaults", doc(hostBlock, blueBlock, []string{
			`[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`,
			`[[endpoint]]`, `network = "blue"`, `name = "web"`, `netns = "/run/netns/c1"`,
		}), func(t *testing.T, c *Config) {
			h := c.Host
			if h.Port != DefaultPort || h.StateDir != DefaultStateDir || h.APISocket != DefaultAPISocket || h.MTU != 0 {
				t.Errorf("host defaults: %+v", h)
			}
			if p := c.Peers[0]; p.Port != DefaultPort {
				t.Errorf("peer port = %d", p.Port)
			}
			if n := c.Networks[0]; n.Gateway != netip.MustParseAddr("10.77.0.1") || n.MTU != 0 {
				t.Errorf("network defaults: %+v", n)
			}
			if ep := c.Endpoints[0]; ep.IfName != DefaultIfName || ep.Address.IsValid() || ep.MAC != nil {
				t.Errorf("endpoint defaults: %+v", ep)
			}
		}},
		{"peer port follows host port", doc(hostBlock, []string{
			`port = 8472`, `[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`,
		}), func(t *testing.T, c *Config) {
			if got := c.Peers[0].AddrPort(); got != netip.MustParseAddrPort("198.18.0.2:8472") {
				t.Errorf("peer = %v", got)
			}
		}},
		{"loopback underlay", doc([]string{`[host]`, `name = "h1"`, `address = "127.0.0.1"`,
			`[[peer]]`, `name = "h2"`, `address = "127.0.0.2"`, `port = 4790`,
		}), nil},
		{"explicit zero mtu", doc(hostBlock, []string{`mtu = 0`}, blueBlock, []string{`mtu = 0`}), nil},
		{"mtu bounds", doc(hostBlock, []string{`mtu = 65535`}, blueBlock, []string{`mtu = 9000`},
			[]string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.78.0.0/24"`, `mtu = 576`}), nil},
		{"vni bounds", doc(hostBlock,
			[]string{`[[network]]`, `name = "a"`, `vni = 256`, `subnet = "10.1.0.0/30"`},
			[]string{`[[network]]`, `name = "b"`, `vni = 16777215`, `subnet = "10.1.0.4/30"`}), nil},
		{"gateway at the end of the subnet", doc(hostBlock, blueBlock, []string{`gateway = "10.77.0.254"`}), nil},
		{"same endpoint name in two networks", doc(hostBlock, blueBlock,
			[]string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.78.0.0/24"`},
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "web"`, `netns = "/run/netns/c1"`},
			[]string{`[[endpoint]]`, `network = "red"`, `name = "web"`, `netns = "/run/netns/c1"`, `ifname = "eth1"`, `address = "10.78.0.10"`}), nil},
		{"same address and mac in two networks", doc(hostBlock, blueBlock,
			[]string{`[[network]]`, `name = "red"`, `vni = 257`, `subnet = "10.78.0.0/24"`},
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "a"`, `netns = "/run/netns/c1"`, `mac = "02:00:00:00:00:01"`},
			[]string{`[[endpoint]]`, `network = "red"`, `name = "b"`, `netns = "/run/netns/c2"`, `mac = "02:00:00:00:00:01"`}), nil},
		{"mac forms", doc(hostBlock, blueBlock,
			[]string{`[[endpoint]]`, `network = "blue"`, `name = "a"`, `netns = "/run/netns/c1"`, `mac = "02-AB-00-00-00-01"`}),
			func(t *testing.T, c *Config) {
				if got := c.Endpoints[0].MAC.String(); got != "02:ab:00:00:00:01" {
					t.Errorf("mac = %s", got)
				}
			}},
		{"full", string(readTestdata(t, "full.toml")), func(t *testing.T, c *Config) {
			if len(c.Peers) != 2 || len(c.Networks) != 2 || len(c.Endpoints) != 3 {
				t.Fatalf("counts: %d peers, %d networks, %d endpoints", len(c.Peers), len(c.Networks), len(c.Endpoints))
			}
			if c.Peers[0].Port != 8472 || c.Networks[1].VNI != 0x10000 || c.Host.MTU != 9000 {
				t.Errorf("values: %+v %+v %+v", c.Peers[0], c.Networks[1], c.Host)
			}
			if want := (net.HardwareAddr{2, 0, 0x0a, 0x4d, 0, 0x0a}); !bytes.Equal(c.Endpoints[0].MAC, want) {
				t.Errorf("mac = %v", c.Endpoints[0].MAC)
			}
		}},
		{"minimal", string(readTestdata(t, "minimal.toml")), nil},
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

// errorCase is a document and the exact errors it must produce.
type errorCase struct {
	name string
	in   string
	want []string
}

func TestParseErrors(t *testing.T) {
	for _, tt := range errorCases() {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("h1.toml", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; parsed\n%s", c.Encode())
			}
			if c != nil {
				t.Errorf("Config is not nil on error")
			}
			got := messages(t, err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	in := doc([]string{
		`[host]`,                      // 1
		`name = ""`,                   // 2
		`address = "0.0.0.0"`,         // 3
		`port = 0`,                    // 4
		`mtu = 100`,                   // 5
		`prot = 1`,                    // 6
		`[[peer]]`,                    // 7
		`name = "h2"`,                 // 8
		`address = "198.18.0"`,        // 9
		`[[network]]`,                 // 10
		`name = "Blue"`,               // 11
		`vni = 1`,                     // 12
		`subnet = "10.77.0.5/24"`,     // 13
		`[[network]]`,                 // 14
		`name = "red"`,                // 15
		`vni = 300`,                   // 16
		`subnet = "10.78.0.0/24"`,     // 17
		`gateway = "10.9.0.1"`,        // 18
		`[[endpoint]]`,                // 19
		`network = "green"`,           // 20
		`name = "web"`,                // 21
		`netns = "c1"`,                // 22
		`[[endpoint]]`,                // 23
		`network = "red"`,             // 24
		`name = "db"`,                 // 25
		`netns = "/run/netns/c2"`,     // 26
		`address = "10.79.0.5"`,       // 27
		`mac = "01:00:5e:00:00:01"`,   // 28
		`ifname = "a-very-long-name"`, // 29
	})
	want := []string{
		`h1.toml:2: host.name: must not be empty`,
		`h1.toml:3: host.address: 0.0.0.0 is unspecified; use the address of an interface`,
		`h1.toml:4: host.port: port 0 is out of range 1..65535`,
		`h1.toml:5: host.mtu: mtu 100 is out of range: use 0 (detect) or 576..65535`,
		`h1.toml:6: host.prot: unknown key`,
		`h1.toml:9: peer[0].address: "198.18.0" is not a valid IPv4 address`,
		`h1.toml:11: network[0].name: "Blue" is not a DNS label: use only a-z, 0-9 and '-'`,
		`h1.toml:12: network[0].vni: vni 1 is out of range 256..16777215`,
		`h1.toml:13: network[0].subnet: 10.77.0.5/24 has host bits set; use 10.77.0.0/24`,
		`h1.toml:18: network[1].gateway: 10.9.0.1 is outside subnet 10.78.0.0/24`,
		`h1.toml:20: endpoint[0].network: no network is named "green"`,
		`h1.toml:22: endpoint[0].netns: "c1" is not an absolute path`,
		`h1.toml:27: endpoint[1].address: 10.79.0.5 is outside subnet 10.78.0.0/24 of network red`,
		`h1.toml:28: endpoint[1].mac: 01:00:5e:00:00:01 is a multicast address; the lowest bit of the first octet must be 0`,
		`h1.toml:29: endpoint[1].ifname: "a-very-long-name" is 16 bytes long; interface names are limited to 15`,
	}
	_, err := Parse("h1.toml", []byte(in))
	got := messages(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err.Error() != strings.Join(want, "\n") {
		t.Errorf("Error() =\n%s", err)
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse("one.toml", []byte(doc(hostBlock, []string{`port = 0`})))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(*Error) failed on %T", err)
	}
	if e.File != "one.toml" || e.Line != 4 || e.Field != "host.port" {
		t.Errorf("got %#v", e)
	}

	_, err = Parse("two.toml", []byte(doc(hostBlock, []string{`port = 0`, `mtu = 1`})))
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 {
		t.Fatalf("errors.As(Errors) on %T: %v", err, err)
	}
	e = nil
	if !errors.As(err, &e) || e != es[0] {
		t.Errorf("errors.As(*Error) on Errors = %v, want the first", e)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.toml", Line: 3, Field: "host.port", Msg: "bad"}, "a.toml:3: host.port: bad"},
		{Error{File: "a.toml", Field: "host", Msg: "missing"}, "a.toml: host: missing"},
		{Error{File: "a.toml", Line: 1, Msg: "syntax"}, "a.toml:1: syntax"},
		{Error{Msg: "bare"}, "bare"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	c := mustParse(t, "h1.toml", readTestdata(t, "h1.toml"))
	tests := []struct {
		field string
		line  int
	}{
		{"host", 3},
		{"host.address", 5},
		{"host.mtu", 3},      // commented out: the [host] header
		{"peer[0].port", 11}, // defaulted: the [[peer]] header
		{"network[0].gateway", 20},
		{"network[0].mtu", 16},
		{"endpoint[0]", 23},
		{"endpoint[0].address", 28},
		{"endpoint[0].mac", 23},
		{"endpoint[3].address", 0}, // no such element
		{"", 0},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			e := c.Errorf(tt.field, "refused %s", "x")
			if e.Line != tt.line || e.File != "h1.toml" || e.Field != tt.field || e.Msg != "refused x" {
				t.Errorf("got %#v, want line %d", e, tt.line)
			}
		})
	}

	var built Config
	if e := built.Errorf("host.port", "x"); e.Line != 0 {
		t.Errorf("Config without positions: line %d", e.Line)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	netns := filepath.Join(dir, "c1")
	if err := os.WriteFile(netns, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, body string) string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "h1.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	endpoint := func(name, ns string) []string {
		return []string{`[[endpoint]]`, `network = "blue"`, `name = "` + name + `"`, `netns = "` + ns + `"`}
	}

	t.Run("ok", func(t *testing.T) {
		p := write(t, doc(hostBlock, blueBlock, endpoint("web", netns)))
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if c.File != p || c.Endpoints[0].NetNS != netns {
			t.Errorf("got %+v", c)
		}
	})
	t.Run("missing netns", func(t *testing.T) {
		missing := filepath.Join(dir, "c9")
		p := write(t, doc(hostBlock, blueBlock, endpoint("web", netns), endpoint("db", missing)))
		_, err := Load(p)
		want := p + ":15: endpoint[1].netns: " + missing + " does not exist"
		if got := messages(t, err); len(got) != 1 || got[0] != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("directory", func(t *testing.T) {
		p := write(t, doc(hostBlock, blueBlock, endpoint("web", dir)))
		_, err := Load(p)
		want := p + ":11: endpoint[0].netns: " + dir + " is a directory, not a network namespace"
		if got := messages(t, err); len(got) != 1 || got[0] != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("parse and filesystem errors together", func(t *testing.T) {
		missing := filepath.Join(dir, "c9")
		p := write(t, doc(hostBlock, []string{`port = 0`}, blueBlock, endpoint("web", missing)))
		_, err := Load(p)
		want := []string{
			p + ":4: host.port: port 0 is out of range 1..65535",
			p + ":12: endpoint[0].netns: " + missing + " does not exist",
		}
		if got := messages(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("no file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "absent.toml"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("got %v, want a not-exist error", err)
		}
	})
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, name := range []string{"h1.toml", "minimal.toml", "full.toml", "encrypted.toml"} {
		t.Run(name, func(t *testing.T) {
			c := mustParse(t, name, readTestdata(t, name))
			enc := c.Encode()
			c2 := mustParse(t, name, enc)
			if !c.Equal(c2) {
				t.Errorf("round trip differs:\n%s\n---\n%s", enc, c2.Encode())
			}
			if enc2 := c2.Encode(); !bytes.Equal(enc, enc2) {
				t.Errorf("Encode is not canonical:\n%s\n---\n%s", enc, enc2)
			}
		})
	}
}

func TestEncodeGolden(t *testing.T) {
	c := mustParse(t, "h1.toml", readTestdata(t, "h1.toml"))
	want := readTestdata(t, "h1.canonical.toml")
	if got := c.Encode(); !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeQuoting(t *testing.T) {
	c := mustParse(t, "q.toml", []byte(doc([]string{
		`[host]`, `name = "h\"1\\ é ☃"`, `address = "198.18.0.1"`, `state_dir = '/var/lib/a "b"'`,
	})))
	c2 := mustParse(t, "q.toml", c.Encode())
	if !c.Equal(c2) || c2.Host.Name != `h"1\ é ☃` || c2.Host.StateDir != `/var/lib/a "b"` {
		t.Errorf("got %+v from\n%s", c2.Host, c.Encode())
	}
	if got := quote("a\x01\x7f\t"); got != `"a\u0001\u007F\t"` {
		t.Errorf("quote = %s", got)
	}
}

func TestEqual(t *testing.T) {
	a := mustParse(t, "a.toml", readTestdata(t, "full.toml"))
	b := mustParse(t, "b.toml", a.Encode())
	if !a.Equal(b) {
		t.Fatal("reformatted file is not Equal")
	}
	b.Endpoints[0].MAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	if a.Equal(b) {
		t.Error("different MAC is Equal")
	}
	if a.Equal(nil) || !(*Config)(nil).Equal(nil) {
		t.Error("nil handling")
	}
}

func TestLookup(t *testing.T) {
	c := mustParse(t, "full.toml", readTestdata(t, "full.toml"))
	if n, ok := c.Network("red"); !ok || n.VNI != 0x10000 {
		t.Errorf("Network(red) = %v, %v", n, ok)
	}
	if _, ok := c.Network("green"); ok {
		t.Error("Network(green) found")
	}
	if n, ok := c.NetworkByVNI(256); !ok || n.Name != "blue" {
		t.Errorf("NetworkByVNI(256) = %v, %v", n, ok)
	}
	if _, ok := c.NetworkByVNI(257); ok {
		t.Error("NetworkByVNI(257) found")
	}
	if p, ok := c.Peer("h3"); !ok || p.Address != netip.MustParseAddr("198.18.0.3") {
		t.Errorf("Peer(h3) = %v, %v", p, ok)
	}
	if _, ok := c.Peer("h1"); ok {
		t.Error("Peer(h1) found: the host is not a peer")
	}
	eps := c.NetworkEndpoints("red")
	if len(eps) != 2 || eps[0].Name != "web" || eps[1].Name != "db" {
		t.Errorf("NetworkEndpoints(red) = %+v", eps)
	}
}
