package dockerplugin

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestPortBindings(t *testing.T) {
	host := netip.MustParseAddr("198.18.0.1")
	body := `{"NetworkID":"n","EndpointID":"e","Options":{"com.docker.network.portmap":[
		{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":0},
		{"Proto":17,"IP":"","Port":53,"HostIP":"198.18.0.9","HostPort":5353,"HostPortEnd":5353}]}}`
	var req connectivityRequest
	if err := decode([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	bs, err := bindings(req.Options)
	if err != nil || len(bs) != 2 {
		t.Fatalf("bindings = %+v, %v", bs, err)
	}
	s, err := bs[0].spec("blue", "web", host)
	if err != nil || s.Port != 8080 || s.Proto != "tcp" || s.To != "web:80" || s.Mode != "host" || s.Listen != "198.18.0.1" {
		t.Errorf("spec of %+v = %+v, %v", bs[0], s, err)
	}
	s, err = bs[1].spec("blue", "web", host)
	if err != nil || s.Proto != "udp" || s.Listen != "198.18.0.9" {
		t.Errorf("spec of %+v = %+v, %v", bs[1], s, err)
	}
	for _, b := range []portBinding{{Proto: 132, Port: 1, HostPort: 1}, {Proto: 6, Port: 80}, {Proto: 6, Port: 80, HostPort: 8080, HostPortEnd: 8090}} {
		if _, err := b.spec("blue", "web", host); err == nil || !strings.HasPrefix(err.Error(), "-p") {
			t.Errorf("spec of %+v: %v, want a -p error", b, err)
		}
	}
}

// FuzzPortBindings feeds ProgramExternalConnectivity bodies through the
// decoding and checks that every publish it yields passes the config
// rules (spec checks them) and names the endpoint.
func FuzzPortBindings(f *testing.F) {
	f.Add([]byte(`{"Options":{"com.docker.network.portmap":[{"Proto":6,"Port":80,"HostPort":8080}]}}`))
	f.Add([]byte(`{"Options":{"com.docker.network.portmap":"x"}}`))
	f.Add([]byte(`{"Options":{"com.docker.network.portmap":[{"Proto":17,"Port":-1,"HostIP":"::","HostPort":1e9}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req connectivityRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		bs, err := bindings(req.Options)
		if err != nil {
			return
		}
		for _, b := range bs {
			s, err := b.spec("blue", "web", netip.MustParseAddr("198.18.0.1"))
			if err == nil && (!strings.HasPrefix(s.To, "web:") || s.Port == 0) {
				t.Fatalf("spec of %+v = %+v", b, s)
			}
		}
	})
}
