package cniplugin

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

const blueConf = `{"cniVersion":"1.1.0","name":"vxnet","type":"vxwire","network":"blue","socket":"/run/x.sock"}`

func TestParseConf(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		code     uint // 0: valid
		check    func(*NetConf) bool
	}{
		{name: "minimal", in: blueConf, check: func(c *NetConf) bool {
			return c.Network == "blue" && c.Socket == "/run/x.sock" && c.Name == "vxnet" && c.CNIVersion == "1.1.0"
		}},
		{name: "extra keys", in: `{"cniVersion":"1.0.0","name":"n","type":"vxwire","network":"blue","args":{"cni":{"x":1}},"runtimeConfig":{"portMappings":[]},"whatever":true}`,
			check: func(c *NetConf) bool { return c.Network == "blue" }},
		{name: "ip", in: `{"name":"n","network":"blue","ip":"10.77.0.9"}`, check: func(c *NetConf) bool { return c.IP == "10.77.0.9" }},
		{name: "runtimeConfig ips", in: `{"name":"n","network":"blue","runtimeConfig":{"ips":["10.77.0.9/24"]}}`,
			check: func(c *NetConf) bool { return len(c.RuntimeConfig.IPs) == 1 }},
		{name: "prevResult", in: `{"cniVersion":"1.0.0","name":"n","network":"blue","prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}]}}`,
			check: func(c *NetConf) bool { return c.PrevResult != nil }},
		{name: "gc attachments", in: `{"cniVersion":"1.1.0","name":"n","network":"blue","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`,
			check: func(c *NetConf) bool { return len(c.ValidAttachments) == 1 }},
		{name: "no network", in: `{"name":"n","type":"vxwire"}`, code: types.ErrInvalidNetworkConfig},
		{name: "network not a label", in: `{"name":"n","network":"Blue_1"}`, code: types.ErrInvalidNetworkConfig},
		{name: "ipv6", in: `{"name":"n","network":"blue","ip":"fd00::1"}`, code: types.ErrInvalidNetworkConfig},
		{name: "bad ip", in: `{"name":"n","network":"blue","ip":"10.77.0"}`, code: types.ErrInvalidNetworkConfig},
		{name: "bad runtime ip", in: `{"name":"n","network":"blue","runtimeConfig":{"ips":["x"]}}`, code: types.ErrInvalidNetworkConfig},
		{name: "not json", in: `{"name":`, code: types.ErrDecodingFailure},
		{name: "network not a string", in: `{"name":"n","network":7}`, code: types.ErrDecodingFailure},
		{name: "bad prevResult", in: `{"cniVersion":"1.0.0","name":"n","network":"blue","prevResult":{"cniVersion":"1.0.0","ips":7}}`, code: types.ErrDecodingFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConf([]byte(tc.in))
			if tc.code != 0 {
				var e *types.Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("ParseConf = %v; want CNI error code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("ParseConf = %+v", c)
			}
		})
	}
}

func TestAddressAndName(t *testing.T) {
	c := &NetConf{Network: "blue"}
	if a, err := c.address(parseArgs("IgnoreUnknown=1;IP=10.77.0.7")); err != nil || a != "10.77.0.7" {
		t.Errorf("address from CNI_ARGS = %q, %v", a, err)
	}
	c.RuntimeConfig.IPs = []string{"10.77.0.8/24"}
	if a, err := c.address(nil); err != nil || a != "10.77.0.8" {
		t.Errorf("address from runtimeConfig = %q, %v", a, err)
	}
	c.IP = "10.77.0.9"
	if a, err := c.address(parseArgs("IP=10.77.0.7")); err != nil || a != "10.77.0.9" {
		t.Errorf("address from conf = %q, %v", a, err)
	}
	if _, err := (&NetConf{}).address(parseArgs("IP=nope")); err == nil {
		t.Error("bad CNI_ARGS IP accepted")
	}
	if a, err := (&NetConf{}).address(parseArgs("")); err != nil || a != "" {
		t.Errorf("no address = %q, %v", a, err)
	}
	id := "0123456789abcdef0123"
	for args, want := range map[string]string{
		"":                                  "0123456789ab",
		"IgnoreUnknown=1;K8S_POD_NAME=web;": "web",
		"K8S_POD_NAME=;junk":                "0123456789ab",
	} {
		if got := containerName(id, parseArgs(args)); got != want {
			t.Errorf("containerName(%q) = %q, want %q", args, got, want)
		}
	}
	if got := containerName("short", nil); got != "short" {
		t.Errorf("containerName(short) = %q", got)
	}
}

// FuzzParseConf checks that ParseConf never panics, that what it accepts
// names a network, and that the plugin's own keys survive encoding the
// accepted configuration and parsing it again.
func FuzzParseConf(f *testing.F) {
	f.Add([]byte(blueConf))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","network":"blue","ip":"10.0.0.1","runtimeConfig":{"ips":["10.0.0.2/8"]}}`))
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"n","network":"b","prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.0.0.2/24","interface":0}]}}`))
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"n","network":"blue","cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseConf(in)
		if err != nil {
			var e *types.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is no CNI error: %v", err)
			}
			return
		}
		if c.Network == "" {
			t.Fatalf("accepted without network: %s", in)
		}
		own := struct {
			Network       string                 `json:"network"`
			Socket        string                 `json:"socket,omitempty"`
			IP            string                 `json:"ip,omitempty"`
			RuntimeConfig struct{ IPs []string } `json:"runtimeConfig"`
		}{Network: c.Network, Socket: c.Socket, IP: c.IP}
		own.RuntimeConfig.IPs = c.RuntimeConfig.IPs
		b, err := json.Marshal(own)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseConf(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if c2.Network != c.Network || c2.Socket != c.Socket || c2.IP != c.IP || len(c2.RuntimeConfig.IPs) != len(c.RuntimeConfig.IPs) {
			t.Fatalf("not a fix point: %+v then %+v", c, c2)
		}
	})
}
