package dockerplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
)

// fakeRuntime is apitest's backend plus address reservations: a reserved
// address is held by a placeholder endpoint until AttachReserved hands it
// over.
type fakeRuntime struct {
	*apitest.Backend
	mu       sync.Mutex
	reserved map[string]netip.Addr // key → address
	aliases  map[string][]string   // network/name → aliases set
}

var _ Runtime = (*fakeRuntime)(nil)

func (f *fakeRuntime) ReserveAddress(ctx context.Context, network, key string, want netip.Addr) (netip.Addr, error) {
	req := api.AttachRequest{Network: network, Name: key, NetNS: "/reserved/" + key}
	if want.IsValid() {
		req.Address = want.String()
	}
	ep, err := f.Backend.Attach(ctx, req)
	if err != nil {
		return netip.Addr{}, err
	}
	a := netip.MustParsePrefix(ep.Address).Addr()
	f.mu.Lock()
	f.reserved[key] = a
	f.mu.Unlock()
	return a, nil
}

func (f *fakeRuntime) ReleaseReservation(network, key string) error {
	f.mu.Lock()
	delete(f.reserved, key)
	f.mu.Unlock()
	return f.Backend.Detach(context.Background(), api.DetachRequest{Network: network, Name: key})
}

func (f *fakeRuntime) SetAliases(ctx context.Context, network, name string, aliases []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aliases == nil {
		f.aliases = map[string][]string{}
	}
	f.aliases[network+"/"+name] = aliases
	return nil
}

func (f *fakeRuntime) AttachReserved(ctx context.Context, req api.AttachRequest, key string) (api.Endpoint, error) {
	if key != "" {
		if err := f.ReleaseReservation(req.Network, key); err != nil {
			return api.Endpoint{}, err
		}
	}
	if req.Handoff {
		req.NetNS = "/proc/self/ns/net"
	}
	return f.Backend.Attach(ctx, req)
}

// fakeDocker answers network inspect from a table the test fills.
type fakeDocker struct {
	mu      sync.Mutex
	nets    map[string]DockerNetwork
	aliases map[string][]string // container/network → aliases
}

func (d *fakeDocker) Network(_ context.Context, id string) (DockerNetwork, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.nets[id]; ok {
		return n, nil
	}
	return DockerNetwork{}, fmt.Errorf("no network %s", id)
}

func (d *fakeDocker) Aliases(_ context.Context, container, network string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.aliases[container+"/"+network], nil
}

func (d *fakeDocker) set(id, name string, eps map[string]string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nets[id] = DockerNetwork{Name: name, Endpoints: eps}
}

// newTestPlugin serves a plugin over a real unix socket, as dockerd
// reaches it, and returns a client posting to it.
func newTestPlugin(t *testing.T) (post func(path string, body any) (int, map[string]any), rt *fakeRuntime, docker *fakeDocker) {
	t.Helper()
	rt = &fakeRuntime{Backend: apitest.New(), reserved: map[string]netip.Addr{}}
	docker = &fakeDocker{nets: map[string]DockerNetwork{}}
	sock := filepath.Join(t.TempDir(), "vxwire.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(ln, New(rt, func(int) Docker { return docker }, nil), safe.Reporter{})
	t.Cleanup(func() { srv.Close() })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(c.CloseIdleConnections)
	post = func(path string, body any) (int, map[string]any) {
		t.Helper()
		var b []byte
		switch v := body.(type) {
		case nil:
		case string:
			b = []byte(v)
		default:
			if b, err = json.Marshal(v); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := c.Post("http://plugin"+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out := map[string]any{}
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: answer %q is not a JSON object: %v", path, raw, err)
		}
		return resp.StatusCode, out
	}
	return post, rt, docker
}

const (
	netID = "993653968c06cc5e6a24de20653a3d13ce0d60b07890bd53d1392e145677ae6a"
	epID  = "cf6125af502309e685b27111573c81d160bee7f310c30116e96876e4c4b5efdc"
)

// createBlueAs is createBlue for Docker network id.
func createBlueAs(t *testing.T, post func(string, any) (int, map[string]any), id string) {
	t.Helper()
	_, out := post("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": id,
		"IPv4Data": []map[string]any{{"AddressSpace": "vxwire", "Pool": "10.99.0.0/24", "Gateway": "10.99.0.1/24"}}})
	if len(out) != 0 {
		t.Fatalf("CreateNetwork %s: %v", id, out)
	}
}

// createBlue walks Docker's network create: pool, gateway, CreateNetwork.
func createBlue(t *testing.T, post func(string, any) (int, map[string]any), opts map[string]any) map[string]any {
	t.Helper()
	if _, out := post("/IpamDriver.RequestPool", map[string]any{"AddressSpace": "vxwire", "Pool": "10.99.0.0/24"}); out["PoolID"] != "10.99.0.0/24" {
		t.Fatalf("RequestPool: %v", out)
	}
	if _, out := post("/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24",
		"Options": map[string]string{"RequestAddressType": "com.docker.network.gateway"}}); out["Address"] != "10.99.0.1/24" {
		t.Fatalf("gateway RequestAddress: %v", out)
	}
	if opts == nil {
		opts = map[string]any{"com.docker.network.enable_ipv6": false, "com.docker.network.generic": map[string]any{}}
	}
	_, out := post("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": netID, "Options": opts,
		"IPv4Data": []map[string]any{{"AddressSpace": "vxwire", "Pool": "10.99.0.0/24", "Gateway": "10.99.0.1/24"}}})
	return out
}

// TestDockerLifecycle drives the calls dockerd makes for network create,
// docker run, docker rm and network rm, in its order, and checks each
// reaches the runtime: the network is created under dockerd's name, the
// endpoint under the container's name with a handoff TAP, and both go
// away again.
func TestDockerLifecycle(t *testing.T) {
	post, rt, docker := newTestPlugin(t)
	if _, out := post("/Plugin.Activate", nil); fmt.Sprint(out["Implements"]) != "[NetworkDriver IpamDriver]" {
		t.Fatalf("Activate: %v", out)
	}
	if _, out := post("/NetworkDriver.GetCapabilities", nil); out["Scope"] != "local" || out["ConnectivityScope"] != "global" {
		t.Fatalf("GetCapabilities: %v", out)
	}
	if _, out := post("/IpamDriver.GetDefaultAddressSpaces", nil); out["LocalDefaultAddressSpace"] != "vxwire" {
		t.Fatalf("GetDefaultAddressSpaces: %v", out)
	}
	docker.set(netID, "blue", map[string]string{epID: "web"})
	docker.aliases = map[string][]string{"web/blue": {"www", "Web", "not_a_label", "www"}}
	if out := createBlue(t, post, map[string]any{"com.docker.network.internal": true,
		"com.docker.network.generic": map[string]any{"com.docker.network.driver.mtu": "1400"}}); len(out) != 0 {
		t.Fatalf("CreateNetwork: %v", out)
	}
	_, out := post("/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24"})
	addr, _ := out["Address"].(string)
	if !strings.HasPrefix(addr, "10.99.0.") || !strings.HasSuffix(addr, "/24") {
		t.Fatalf("RequestAddress: %v", out)
	}
	n, err := rt.Network("blue")
	if err != nil || n.Subnet != "10.99.0.0/24" || n.Egress || n.MTU != 1400 {
		t.Fatalf("vxwire network blue: %+v, %v; want 10.99.0.0/24, no egress (--internal), mtu 1400", n, err)
	}
	// --mac-address goes through the config's MAC rule: a group address
	// is refused, and nothing of the endpoint is kept.
	if _, out := post("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": netID, "EndpointID": epID,
		"Interface": map[string]string{"Address": addr, "MacAddress": "03:00:00:00:00:01"}}); !strings.Contains(fmt.Sprint(out["Err"]), "multicast") {
		t.Fatalf("CreateEndpoint with a multicast MAC answered %v; want a refusal naming it", out)
	}
	if _, out := post("/NetworkDriver.CreateEndpoint", map[string]any{"NetworkID": netID, "EndpointID": epID,
		"Interface": map[string]string{"Address": addr}}); len(out) != 0 {
		t.Fatalf("CreateEndpoint answered %v; an interface was given, so none may come back", out)
	}
	_, out = post("/NetworkDriver.Join", map[string]any{"NetworkID": netID, "EndpointID": epID, "SandboxKey": "/var/run/docker/netns/x"})
	ifn, _ := out["InterfaceName"].(map[string]any)
	if ifn["SrcName"] != "vxwcf6125af5023" || ifn["DstPrefix"] != "eth" || out["Gateway"] != nil {
		t.Fatalf("Join: %v; want the handoff TAP, prefix eth, no gateway on an internal network", out)
	}
	eps := rt.Endpoints()
	if len(eps) != 1 || eps[0].Name != "web" || eps[0].Address != addr || eps[0].IfName != "vxwcf6125af5023" || eps[0].ContainerID != epID {
		t.Fatalf("endpoints after Join: %+v; want web at %s only (the reservation handed over)", eps, addr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rt.mu.Lock()
		got := fmt.Sprint(rt.aliases["blue/web"])
		rt.mu.Unlock()
		if got == "[www]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aliases %s, want [www] (the name itself, duplicates and non-labels left out)", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, path := range []string{"/NetworkDriver.Leave", "/NetworkDriver.DeleteEndpoint"} {
		if _, out := post(path, map[string]any{"NetworkID": netID, "EndpointID": epID}); len(out) != 0 {
			t.Fatalf("%s: %v", path, out)
		}
	}
	if eps := rt.Endpoints(); len(eps) != 0 {
		t.Fatalf("endpoints after Leave: %+v", eps)
	}
	post("/IpamDriver.ReleaseAddress", map[string]any{"PoolID": "10.99.0.0/24", "Address": strings.TrimSuffix(addr, "/24")})
	if _, out := post("/NetworkDriver.DeleteNetwork", map[string]any{"NetworkID": netID}); len(out) != 0 {
		t.Fatalf("DeleteNetwork: %v", out)
	}
	if _, err := rt.Network("blue"); err == nil {
		t.Fatal("vxwire network blue remains after docker network rm")
	}
	// Another dockerd still has its blue: its next container brings the
	// vxwire network back.
	otherNet := "aa" + netID[2:]
	docker.set(otherNet, "blue", nil)
	createBlueAs(t, post, otherNet)
	rt.RemoveNetwork(context.Background(), "blue") // as if removed from another host
	if _, out := post("/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24"}); out["Err"] != nil {
		t.Fatalf("RequestAddress after blue was removed elsewhere: %v", out)
	}
	if _, err := rt.Network("blue"); err != nil {
		t.Fatalf("blue not created again: %v", err)
	}
}

// TestDockerRefusals checks that each request Docker may send that vxwire
// cannot honour gets a JSON error naming what was wrong, and that the
// same requests done right succeed (the probe beside each refusal).
func TestDockerRefusals(t *testing.T) {
	post, rt, docker := newTestPlugin(t)
	docker.set(netID, "blue", nil)
	pool := map[string]any{"AddressSpace": "vxwire", "Pool": "10.99.0.0/24"}
	for _, tc := range []struct {
		path, body string
		want       string
	}{
		{"/IpamDriver.RequestPool", `{"AddressSpace":"vxwire"}`, "--subnet"},
		{"/IpamDriver.RequestPool", `{"AddressSpace":"vxwire","Pool":"10.99.0.0/24","SubPool":"10.99.0.0/25"}`, "--ip-range"},
		{"/IpamDriver.RequestPool", `{"AddressSpace":"vxwire","Pool":"10.99.0.1/24"}`, "10.99.0.0/24"},
		{"/IpamDriver.RequestPool", `{"AddressSpace":"vxwire","V6":true}`, "IPv4 only"},
		{"/IpamDriver.RequestPool", `{"AddressSpace":"vxwire","Pool":"10.99.0.0/31"}`, "prefix length must be at most 30"},
		{"/IpamDriver.RequestAddress", `{"PoolID":"10.99.0.0/24","Address":"10.99.0.255","Options":{"RequestAddressType":"com.docker.network.gateway"}}`, "broadcast address"},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.99.0.0/24"}]}`, "--ipam-driver vxwire"},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"foo":"bar"}},"IPv4Data":[{"AddressSpace":"vxwire","Pool":"10.99.0.0/24"}]}`, "--opt foo"},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.generic":{"com.docker.network.driver.mtu":"big"}},"IPv4Data":[{"AddressSpace":"vxwire","Pool":"10.99.0.0/24"}]}`, "mtu=big"},
		{"/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","Options":{"com.docker.network.enable_ipv6":true},"IPv4Data":[{"AddressSpace":"vxwire","Pool":"10.99.0.0/24"}]}`, "--ipv6"},
		{"/NetworkDriver.CreateEndpoint", `{"NetworkID":"nope","EndpointID":"e1","Interface":{"Address":"10.99.0.5/24"}}`, "not a vxwire network"},
		{"/NetworkDriver.Join", `{"NetworkID":"n1","EndpointID":"e9"}`, "was not created by vxwire"},
		{"/IpamDriver.RequestAddress", `{"PoolID":"10.50.0.0/24"}`, "subnet 10.50.0.0/24"},
	} {
		code, out := post(tc.path, tc.body)
		msg, _ := out["Err"].(string)
		if code != http.StatusOK || !strings.Contains(msg, tc.want) || out["Error"] != msg {
			t.Errorf("%s %s: %d %v; want Err and Error naming %q", tc.path, tc.body, code, out, tc.want)
		}
	}
	if code, out := post("/IpamDriver.RequestPool", pool); code != http.StatusOK || out["Err"] != nil {
		t.Fatalf("a good RequestPool was refused: %v", out)
	}
	if out := createBlue(t, post, nil); len(out) != 0 {
		t.Fatalf("a good CreateNetwork was refused: %v", out)
	}
	// The first address request creates blue if the background did not.
	if _, out := post("/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.99.0.0/24"}); out["Err"] != nil {
		t.Fatalf("a good RequestAddress was refused: %v", out)
	}
	if _, err := rt.Network("blue"); err != nil {
		t.Fatalf("blue not created: %v", err)
	}
	// A second Docker network overlapping blue, and the same name with
	// another subnet, are refused.
	if _, out := post("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": "n2",
		"IPv4Data": []map[string]any{{"AddressSpace": "vxwire", "Pool": "10.99.0.0/25"}}}); !strings.Contains(fmt.Sprint(out["Err"]), "overlaps") {
		t.Errorf("overlapping subnet: %v", out)
	}
	docker.set("n3", "blue", nil)
	post("/NetworkDriver.CreateNetwork", map[string]any{"NetworkID": "n3",
		"IPv4Data": []map[string]any{{"AddressSpace": "vxwire", "Pool": "10.55.0.0/24"}}})
	if _, out := post("/IpamDriver.RequestAddress", map[string]any{"PoolID": "10.55.0.0/24"}); !strings.Contains(fmt.Sprint(out["Err"]), "has subnet 10.99.0.0/24") {
		t.Errorf("blue with another subnet: %v", out)
	}
	// Malformed bodies are 400, unknown methods 404; both JSON.
	if code, out := post("/NetworkDriver.CreateNetwork", "{"); code != http.StatusBadRequest || out["Err"] == nil {
		t.Errorf("malformed body: %d %v", code, out)
	}
	if code, _ := post("/NetworkDriver.Nope", nil); code != http.StatusNotFound {
		t.Errorf("unknown method: %d", code)
	}
}

func TestHostSocket(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"dockerd"}, ""},
		{[]string{"dockerd", "-H", "unix:///d/sock", "-H", "tcp://0:1"}, "/d/sock"},
		{[]string{"dockerd", "--host=unix:///d/s2"}, "/d/s2"},
		{[]string{"dockerd", "-Hunix:///d/s3"}, "/d/s3"},
		{[]string{"dockerd", "-H", "tcp://0:1", "--data-root", "/x"}, ""},
	} {
		if got := hostSocket(tc.args); got != tc.want {
			t.Errorf("hostSocket(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
