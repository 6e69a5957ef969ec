package dockerplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
)

// call posts body to p's handler for path and returns the decoded answer.
func call(t *testing.T, p *Plugin, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(b)))
	out := map[string]any{}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %q: %v", path, rec.Body.Bytes(), err)
	}
	return out
}

// TestRestartKeepsDockerState: a plugin restarted from its state file
// serves the networks and endpoints dockerd created before: a new
// endpoint on an existing network (docker run, network connect), the
// removal of an endpoint joined before (docker rm, network disconnect),
// the release of an address reserved before, and network rm, which
// removes the vxwire network. Before this fix each of these was refused
// ("not a vxwire network here") or left the vxwire network and the
// reserved address behind.
func TestRestartKeepsDockerState(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	rt := &fakeRuntime{Backend: apitest.New(), reserved: map[string]netip.Addr{}}
	docker := &fakeDocker{nets: map[string]DockerNetwork{}}
	docker.set(netID, "blue", map[string]string{epID: "web"})
	newPlugin := func() *Plugin {
		p := New(rt, func(int) Docker { return docker }, nil)
		if err := p.Restore(path); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := newPlugin()
	call(t, p1, "/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": netID,
		"IPv4Data": []map[string]any{{"AddressSpace": "vxwire", "Pool": "10.99.0.0/24", "Gateway": "10.99.0.1/24"}}})
	addr, _ := call(t, p1, "/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24"})["Address"].(string)
	if out := call(t, p1, "/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": netID, "EndpointID": epID,
		"Interface": map[string]string{"Address": addr}}); len(out) != 0 {
		t.Fatalf("CreateEndpoint: %v", out)
	}
	if out := call(t, p1, "/NetworkDriver.Join", map[string]any{"NetworkID": netID, "EndpointID": epID}); out["Err"] != nil {
		t.Fatalf("Join: %v", out)
	}
	pending, _ := call(t, p1, "/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24"})["Address"].(string)
	if pending == "" {
		t.Fatal("second RequestAddress gave no address")
	}

	// The daemon restarts: its handoff TAP went with the process.
	if err := rt.Detach(context.Background(), api.DetachRequest{Network: "blue", ContainerID: epID}); err != nil {
		t.Fatal(err)
	}
	p2 := newPlugin()
	ep2 := "ab" + epID[2:]
	docker.set(netID, "blue", map[string]string{epID: "web", ep2: "db"})
	a2, _ := call(t, p2, "/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24"})["Address"].(string)
	if out := call(t, p2, "/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": netID, "EndpointID": ep2,
		"Interface": map[string]string{"Address": a2}}); len(out) != 0 {
		t.Fatalf("CreateEndpoint on a network created before the restart: %v", out)
	}
	if out := call(t, p2, "/NetworkDriver.Join", map[string]any{"NetworkID": netID, "EndpointID": ep2}); out["Err"] != nil {
		t.Fatalf("Join after the restart: %v", out)
	}
	for _, path := range []string{"/NetworkDriver.Leave", "/NetworkDriver.DeleteEndpoint"} {
		for _, id := range []string{epID, ep2} {
			if out := call(t, p2, path, map[string]any{"NetworkID": netID, "EndpointID": id}); len(out) != 0 {
				t.Fatalf("%s %.12s: %v", path, id, out)
			}
		}
	}
	call(t, p2, "/IpamDriver.ReleaseAddress", map[string]any{"PoolID": "10.99.0.0/24", "Address": strings.TrimSuffix(pending, "/24")})
	rt.mu.Lock()
	left := len(rt.reserved)
	rt.mu.Unlock()
	if left != 0 {
		t.Fatalf("reservations left after ReleaseAddress across a restart: %d", left)
	}
	if out := call(t, p2, "/NetworkDriver.DeleteNetwork", map[string]any{"NetworkID": netID}); len(out) != 0 {
		t.Fatalf("DeleteNetwork: %v", out)
	}
	if _, err := rt.Network("blue"); err == nil {
		t.Fatal("vxwire network blue remains after docker network rm across a restart")
	}
	if eps := rt.Endpoints(); len(eps) != 0 {
		t.Fatalf("endpoints left: %+v", eps)
	}
	// What the last plugin saved is empty again.
	if p3 := newPlugin(); len(p3.nets) != 0 || len(p3.eps) != 0 || len(p3.reserved) != 0 {
		t.Fatalf("state after everything was removed: %d networks, %d endpoints, %d reservations", len(p3.nets), len(p3.eps), len(p3.reserved))
	}
}

// TestRestoreDropsBadEntries: entries that do not check out are dropped
// and named; the rest is kept.
func TestRestoreDropsBadEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	st := `{"networks":[{"id":"n1","subnet":"10.99.0.0/24"},{"id":"n2","subnet":"10.98.0.1/24"}],
		"endpoints":[{"id":"e1","network":"n1","address":"10.99.0.5/24","handoff":"vxwe1"},{"id":"e2","network":"n9","address":"10.99.0.6/24","handoff":"vxw2"}],
		"reserved":[{"address":"10.99.0.7","key":"docker-ipam-x-1"},{"address":"10.99.0.8","key":"web"}]}`
	if err := os.WriteFile(path, []byte(st), 0o600); err != nil {
		t.Fatal(err)
	}
	p := New(&fakeRuntime{Backend: apitest.New(), reserved: map[string]netip.Addr{}}, nil, nil)
	err := p.Restore(path)
	if err == nil || !strings.Contains(err.Error(), "network n2") || !strings.Contains(err.Error(), "endpoint e2") ||
		!strings.Contains(err.Error(), "reservation of 10.99.0.8") {
		t.Fatalf("Restore: %v; want n2, e2 and the reservation of 10.99.0.8 named", err)
	}
	if len(p.nets) != 1 || len(p.eps) != 1 || len(p.reserved) != 1 {
		t.Fatalf("kept %d networks, %d endpoints, %d reservations; want 1 of each", len(p.nets), len(p.eps), len(p.reserved))
	}
}

// FuzzRestore reads arbitrary state files: never a panic, and what is
// kept encodes to a fixed point.
func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"networks":[{"id":"n1","subnet":"10.99.0.0/24","name":"blue"}],"endpoints":[{"id":"e1","network":"n1","address":"10.99.0.5/24","handoff":"vxwe1","name":"web"}],"reserved":[{"address":"10.99.0.7","key":"docker-ipam-x-1"}]}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`{"networks":[{"id":"n1","subnet":"10.99.0.0/24"},{"id":"n1","subnet":"10.98.0.0/24"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), StateFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p := New(nil, nil, nil)
		p.Restore(path)
		p.mu.Lock()
		once := p.unlockedEncode()
		p.mu.Unlock()
		var st savedState
		if err := json.Unmarshal(once, &st); err != nil {
			t.Fatalf("own encoding does not decode: %v", err)
		}
		q := New(nil, nil, nil)
		if err := q.unlockedLoad(st, path); err != nil {
			t.Fatalf("own encoding refused: %v", err)
		}
		if twice := q.unlockedEncode(); !bytes.Equal(once, twice) {
			t.Fatalf("not a fixed point:\n%s\n%s", once, twice)
		}
	})
}
