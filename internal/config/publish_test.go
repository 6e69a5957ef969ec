package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePublish(t *testing.T) {
	in := doc(hostBlock, blueBlock, []string{`[[publish]]`, `network = "blue"`, `port = 8080`, `to = "web:80"`,
		``, `[[publish]]`, `network = "blue"`, `port = 8080`, `proto = "udp"`, `to = "dns:53"`, `mode = "host"`, `listen = "198.18.0.9"`})
	c, err := Parse("h1.toml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Publish{
		{Network: "blue", Port: 8080, Proto: "tcp", Target: "web", TargetPort: 80, Mode: "ingress"},
		{Network: "blue", Port: 8080, Proto: "udp", Target: "dns", TargetPort: 53, Mode: "host", Listen: netip.MustParseAddr("198.18.0.9")},
	}
	if len(c.Publishes) != 2 || c.Publishes[0] != want[0] || c.Publishes[1] != want[1] {
		t.Errorf("Publishes = %+v, want %+v", c.Publishes, want)
	}
}

func TestPublishErrors(t *testing.T) {
	pub := func(lines ...string) []string { return append([]string{`[[publish]]`, `network = "blue"`}, lines...) }
	for _, tt := range []struct {
		name string
		in   string
		want string
	}{
		{"no port", doc(hostBlock, blueBlock, pub(`to = "web:80"`)), `h1.toml:8: publish[0].port: required key is missing`},
		{"port range", doc(hostBlock, blueBlock, pub(`port = 70000`, `to = "web:80"`)), `h1.toml:10: publish[0].port: port 70000 is out of range 1..65535`},
		{"bad to", doc(hostBlock, blueBlock, pub(`port = 1`, `to = "web"`)), `h1.toml:11: publish[0].to: "web" is not NAME:PORT`},
		{"bad to port", doc(hostBlock, blueBlock, pub(`port = 1`, `to = "web:0"`)), `publish[0].to: "web:0": port "0" is not 1..65535`},
		{"bad proto", doc(hostBlock, blueBlock, pub(`port = 1`, `to = "web:1"`, `proto = "sctp"`)), `publish[0].proto: proto "sctp" is neither "tcp" nor "udp"`},
		{"multicast listen", doc(hostBlock, blueBlock, pub(`port = 1`, `to = "web:1"`, `listen = "224.0.0.1"`)), `publish[0].listen: listen 224.0.0.1 is not a unicast IPv4 address`},
		{"bad mode", doc(hostBlock, blueBlock, pub(`port = 1`, `to = "web:1"`, `mode = "global"`)), `publish[0].mode: mode "global" is neither "ingress" nor "host"`},
		{"unknown network", doc(hostBlock, blueBlock, []string{`[[publish]]`, `network = "red"`, `port = 1`, `to = "web:1"`}), `h1.toml:9: publish[0].network: no network is named "red"`},
		{"twice", doc(hostBlock, blueBlock, pub(`port = 1`, `to = "web:1"`), pub(`port = 1`, `to = "db:1"`)),
			`h1.toml:14: publish[1].port: tcp/1 is already published (to web:1 in network blue) by publish[0]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("h1.toml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPublishClash(t *testing.T) {
	a := Publish{Proto: "tcp", Port: 80, Network: "blue", Target: "web", TargetPort: 80}
	b := a
	if PublishClash(&a, &b) == nil {
		t.Error("same port and protocol do not clash")
	}
	b.Proto = "udp"
	if PublishClash(&a, &b) != nil {
		t.Error("tcp and udp clash")
	}
	b.Proto, a.Listen, b.Listen = "tcp", netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	if PublishClash(&a, &b) != nil {
		t.Error("two listen addresses clash")
	}
	b.Listen = netip.Addr{}
	if PublishClash(&a, &b) == nil {
		t.Error("the default listen address does not clash with a set one")
	}
}

// TestPublishDoorsAgree: the config file and the API and CLI (NewPublish)
// take and refuse the same publishes. The file used to take a multicast
// listen address that the API refused.
func TestPublishDoorsAgree(t *testing.T) {
	for _, tc := range []struct {
		proto, to, mode, listen string
		ok                      bool
	}{
		{"tcp", "web:80", "ingress", "198.18.0.9", true},
		{"udp", "web:53", "host", "", true},
		{"tcp", "web:80", "ingress", "224.0.0.1", false},
		{"tcp", "web:80", "ingress", "255.255.255.255", true},
		{"sctp", "web:80", "ingress", "", false},
		{"tcp", "web:80", "global", "", false},
		{"tcp", "web_1:80", "ingress", "", false},
		{"tcp", "web:0", "ingress", "", false},
	} {
		lines := []string{`[[publish]]`, `network = "blue"`, `port = 8080`, `proto = "` + tc.proto + `"`, `to = "` + tc.to + `"`, `mode = "` + tc.mode + `"`}
		if tc.listen != "" {
			lines = append(lines, `listen = "`+tc.listen+`"`)
		}
		_, fileErr := Parse("h1.toml", []byte(doc(hostBlock, blueBlock, lines)))
		_, apiErr := NewPublish("blue", 8080, tc.proto, tc.to, tc.mode, tc.listen)
		if (fileErr == nil) != tc.ok || (apiErr == nil) != tc.ok {
			t.Errorf("%+v: file %v, API %v; want accepted %v by both", tc, fileErr, apiErr, tc.ok)
		}
	}
}
