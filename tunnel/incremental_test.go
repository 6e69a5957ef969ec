package tunnel

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
)

// TestIncrementalMatchesFullApply attaches and detaches API endpoints
// through the incremental path (incremental.go) and checks, after each
// step, that a full apply of the same state changes nothing: the same
// snapshot (flood lists, proxy ARP, DNS names both ways), effective config
// and published-port table. It also checks that the steps did take the
// incremental path, and that a namespace on two networks (which it does
// not cover) still works through the full apply.
func TestIncrementalMatchesFullApply(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1, "blue a 10.77.0.10"))
	if _, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.90.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	attach := func(req api.AttachRequest) {
		t.Helper()
		if req.NetNS == "" {
			req.NetNS = netnsFile(t, dir, req.Network+"-"+req.Name)
		}
		if _, err := h.e.Attach(ctx, req); err != nil {
			t.Fatalf("attach %s/%s: %v", req.Network, req.Name, err)
		}
		h.checkFullApplyAgrees(t, "after attaching "+req.Network+"/"+req.Name)
	}
	detach := func(network, name string) {
		t.Helper()
		if err := h.e.Detach(ctx, api.DetachRequest{Network: network, Name: name}); err != nil {
			t.Fatalf("detach %s/%s: %v", network, name, err)
		}
		h.checkFullApplyAgrees(t, "after detaching "+network+"/"+name)
	}
	// Names sort before and after the file's endpoint and each other; two
	// share an alias; one asks for its address.
	attach(api.AttachRequest{Network: "green", Name: "m", Aliases: []string{"web", "www"}})
	attach(api.AttachRequest{Network: "blue", Name: "z", Aliases: []string{"web"}})
	attach(api.AttachRequest{Network: "blue", Name: "b", Aliases: []string{"web"}, Address: "10.77.0.99"})
	attach(api.AttachRequest{Network: "green", Name: "c"})
	for i := range 5 {
		attach(api.AttachRequest{Network: "green", Name: fmt.Sprintf("n%d", i)})
	}
	detach("blue", "b")
	detach("green", "m")
	detach("green", "n2")
	attach(api.AttachRequest{Network: "blue", Name: "b", Aliases: []string{"web"}})

	// The steps above took the incremental path.
	h.e.mu.Lock()
	ep := h.e.dynEps[epKey{"green", "n0"}].Endpoint
	delete(h.e.dynEps, epKey{"green", "n0"})
	detached := h.e.unlockedDetachOne(epKey{"green", "n0"})
	h.e.dynEps[epKey{"green", "n0"}] = dynEndpoint{Endpoint: ep}
	attached, err := h.e.unlockedAttachOne(ep)
	h.e.mu.Unlock()
	if !detached || !attached || err != nil {
		t.Fatalf("incremental detach %v, attach %v, %v: want both taken", detached, attached, err)
	}
	h.checkFullApplyAgrees(t, "after a direct detach and attach")

	// A container on two networks: the full apply's case.
	ns := netnsFile(t, dir, "two")
	attach(api.AttachRequest{Network: "blue", Name: "two", NetNS: ns})
	h.e.mu.Lock()
	ep2 := h.e.dynEps[epKey{"blue", "two"}].Endpoint
	ep2.Network, ep2.IfName = "green", "eth1"
	can := h.e.unlockedCanIncrement(ep2, h.e.networks["green"], netip.Addr{})
	h.e.mu.Unlock()
	if can {
		t.Fatal("a second network in one namespace would take the incremental path")
	}
	attach(api.AttachRequest{Network: "green", Name: "two", NetNS: ns, IfName: "eth1"})
	h.e.mu.Lock()
	shared := h.e.sw.snap.Load().names.shared["green"]
	h.e.mu.Unlock()
	if len(shared) != 1 {
		t.Fatalf("shared names of green: %v; want the container on two networks", shared)
	}
	detach("blue", "two")
}

// checkFullApplyAgrees applies the engine's effective config in full and
// fails if the snapshot, the config or the published-port table differ
// from what the engine held before.
func (h *fakeHost) checkFullApplyAgrees(t *testing.T, when string) {
	t.Helper()
	e := h.e
	e.mu.Lock()
	defer e.mu.Unlock()
	cfg, snap := *e.cfg, describeSnapshot(e.sw.snap.Load())
	cfg.Endpoints = slices.Clone(cfg.Endpoints)
	var pub string
	if e.pub != nil {
		pub = describePubTable(e.pub.table.Load())
	}
	ports := len(e.ports)
	if _, err := e.unlockedApply(e.unlockedEffective(), true); err != nil {
		t.Fatalf("%s: full apply: %v", when, err)
	}
	if len(e.ports) != ports {
		t.Fatalf("%s: the full apply changed the ports: %d, had %d", when, len(e.ports), ports)
	}
	if !reflect.DeepEqual(&cfg, e.cfg) {
		t.Fatalf("%s: effective config\n%+v\nfull apply\n%+v", when, cfg.Endpoints, e.cfg.Endpoints)
	}
	if got := describeSnapshot(e.sw.snap.Load()); got != snap {
		t.Fatalf("%s: snapshot\n%s\nfull apply\n%s", when, snap, got)
	}
	if e.pub != nil {
		if got := describePubTable(e.pub.table.Load()); got != pub {
			t.Fatalf("%s: published-port table\n%s\nfull apply\n%s", when, pub, got)
		}
	}
}

// describeSnapshot renders what the data path reads from s, in an order
// that does not depend on map iteration or attach order.
func describeSnapshot(s *snapshot) string {
	var b strings.Builder
	vnis := make([]uint32, 0, len(s.byVNI))
	for v := range s.byVNI {
		vnis = append(vnis, v)
	}
	slices.Sort(vnis)
	for _, v := range vnis {
		nv := s.byVNI[v]
		var ports []string
		for _, p := range nv.ports {
			ports = append(ports, fmt.Sprintf("%s/%s@%s", p.key.network, p.key.name, p.addr))
		}
		sort.Strings(ports)
		fmt.Fprintf(&b, "vni %d %s enc=%v peers=%d ports=%v neigh=%v pins=%v vips=%d\n",
			v, nv.net.cfg.Name, nv.encrypted, len(nv.peers), ports, nv.neigh, nv.pins, len(nv.vips))
	}
	fmt.Fprintf(&b, "peers=%d byAddr=%d hosts=%v\n", len(s.peers), len(s.byAddr), s.hosts)
	for network, m := range sortedKeys(s.names.fwd) {
		for name, addrs := range sortedKeys(m) {
			a := slices.Clone(addrs)
			slices.SortFunc(a, netip.Addr.Compare)
			fmt.Fprintf(&b, "fwd %s %s %v\n", network, name, a)
		}
	}
	for network, m := range sortedKeys(s.names.rev) {
		for ip, names := range sortedKeys(m) {
			n := slices.Clone(names)
			sort.Strings(n)
			fmt.Fprintf(&b, "rev %s %s %v\n", network, ip, n)
		}
	}
	for network, m := range sortedKeys(s.names.shared) {
		for ip, nets := range sortedKeys(m) {
			fmt.Fprintf(&b, "shared %s %s %v\n", network, ip, nets)
		}
	}
	return b.String()
}

// describePubTable renders the endpoint targets of t.
func describePubTable(t *pubTable) string {
	if t == nil {
		return "none"
	}
	var b strings.Builder
	for k, targets := range sortedKeys(t.targets) {
		fmt.Fprintf(&b, "target %v %v\n", k, targets)
	}
	for k, ips := range sortedKeys(t.local) {
		a := slices.Clone(ips)
		slices.SortFunc(a, netip.Addr.Compare)
		fmt.Fprintf(&b, "local %v %v\n", k, a)
	}
	return b.String()
}

// sortedKeys yields the entries of m with a non-empty value in the order
// of their keys' printed form: an empty entry and a missing one read the
// same to the data path.
func sortedKeys[K comparable, V any](m map[K]V) func(func(K, V) bool) {
	keys := make([]K, 0, len(m))
	for k, v := range m {
		if reflect.ValueOf(v).Len() > 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	return func(yield func(K, V) bool) {
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}
