package dockerplugin

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/internal/api/apitest"
)

// FuzzRequests feeds every protocol method arbitrary bodies: the answer is
// always a JSON object (a result, or a refusal with Err), never a panic.
func FuzzRequests(f *testing.F) {
	p := New(&fakeRuntime{Backend: apitest.New(), reserved: map[string]netip.Addr{}},
		func(int) Docker { return &fakeDocker{nets: map[string]DockerNetwork{"n1": {Name: "blue"}}} }, nil)
	paths := []string{}
	for path := range p.routes() {
		paths = append(paths, path)
	}
	for i, seed := range []string{
		`{"NetworkID":"n1","Options":{"com.docker.network.generic":{"encrypted":""},"com.docker.network.internal":true},"IPv4Data":[{"AddressSpace":"vxwire","Pool":"10.99.0.0/24","Gateway":"10.99.0.1/24"}]}`,
		`{"AddressSpace":"vxwire","Pool":"10.99.0.0/24"}`,
		`{"PoolID":"10.99.0.0/24","Options":{"RequestAddressType":"com.docker.network.gateway"}}`,
		`{"NetworkID":"n1","EndpointID":"e1","Interface":{"Address":"10.99.0.5/24","MacAddress":"02:00:00:00:00:01"}}`,
		`{"NetworkID":"n1","EndpointID":"e1","SandboxKey":"/x"}`,
		`{"PoolID":"10.99.0.0/24","Address":"10.99.0.5"}`,
		``, `null`, `[]`, `{"Options":{"com.docker.network.generic":7}}`,
	} {
		f.Add(uint8(i), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := paths[int(which)%len(paths)]
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)).WithContext(context.Background())
		p.ServeHTTP(rec, req)
		out := bytes.TrimSpace(rec.Body.Bytes())
		if len(out) == 0 || out[0] != '{' {
			t.Fatalf("%s %q: answer %q is not a JSON object", path, body, out)
		}
	})
}
