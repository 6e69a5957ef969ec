package tunnel

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/consensus/consensustest"
)

// oneVoterLog starts a log whose only voter is name, on loopback, and
// waits until it leads.
func oneVoterLog(t *testing.T, name string) *consensus.Node {
	t.Helper()
	addr := consensustest.FreeAddrs(t, 1)[0]
	v := []consensus.Voter{{Name: name, Addr: addr}}
	n, err := consensus.New(consensus.Config{Name: name, Bind: addr, Voters: v, Secret: []byte("a cluster secret of 32 bytes!!!"),
		Dir: t.TempDir(), Fast: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	for deadline := time.Now().Add(10 * time.Second); !n.HasLeader(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the one-voter log elected no leader")
		}
	}
	return n
}

// TestRuntimeNetworksThroughLog drives network create and rm through an
// engine whose API networks live in a log: they land in the log (not in
// state_dir), a definition the log refuses as a clash is a conflict and
// is taken back, and a removal leaves the log and the engine.
func TestRuntimeNetworksThroughLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1, "blue a 10.77.0.10"))
	log := oneVoterLog(t, "h1")
	h.e.mu.Lock()
	h.e.blocks = log
	h.e.mu.Unlock()

	if _, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.90.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	if ns := log.Networks(); len(ns) != 1 || ns[0].Def.Name != "green" || ns[0].Host != "h1" {
		t.Fatalf("log holds %+v, want green by h1", ns)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Host.StateDir, networksFile)); err == nil {
		t.Error("an API network of the log was also saved in state_dir")
	}
	h.gateway(t, "10.90.0.0/24")

	// Another host's create reaches the log; this engine has not applied
	// it yet, so its own check passes and the log refuses the clash.
	gold := config.Network{Name: "gold", VNI: 300, Subnet: netip.MustParsePrefix("10.91.0.0/24"), Gateway: netip.MustParseAddr("10.91.0.1")}
	if err := log.CreateNetwork(ctx, gold); err != nil {
		t.Fatal(err)
	}
	// And one that clashes with this host's config file (which has red):
	// the log takes it, this host does not carry it and says why.
	red := config.Network{Name: "red", VNI: 301, Subnet: netip.MustParsePrefix("10.93.0.0/24"), Gateway: netip.MustParseAddr("10.93.0.1")}
	if err := log.CreateNetwork(ctx, red); err != nil {
		t.Fatal(err)
	}
	_, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "pink", Subnet: "10.92.0.0/24", VNI: 300})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "vni 300") {
		t.Fatalf("create clashing with a log network: %v, want a conflict naming vni 300", err)
	}
	h.e.mu.Lock()
	h.e.unlockedReapply()
	h.e.mu.Unlock()
	if _, ok := findNetwork(h.e.Networks(), "pink"); ok {
		t.Fatal("the refused network is listed")
	}
	if n, ok := findNetwork(h.e.Networks(), "gold"); !ok || n.Error != "" {
		t.Fatalf("the log's network gold is not carried: %+v", n)
	}
	if n, err := h.e.Network("red"); err != nil || n.VNI != 257 {
		t.Fatalf("red: %+v, %v; want the config file's", n, err)
	}
	if h.e.refused.Snapshot()[refusedFileClash] != 1 {
		t.Errorf("the log's red, clashing with the file, is not counted: %v", h.e.refused.Snapshot())
	}

	if err := h.e.RemoveNetwork(ctx, "green"); err != nil {
		t.Fatal(err)
	}
	if ns := log.Networks(); len(ns) != 2 || ns[0].Def.Name != "gold" {
		t.Fatalf("log holds %+v after removing green", ns)
	}
	if _, ok := findNetwork(h.e.Networks(), "green"); ok {
		t.Error("green is still listed after its removal")
	}
	if err := h.e.RemoveNetwork(ctx, "green"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("second removal: %v, want not found", err)
	}
}

// TestAdoptNetworks: API networks that state_dir holds from before the
// host had a log are carried into the log once, and the file goes.
func TestAdoptNetworks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1, "blue a 10.77.0.10"))
	if _, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.90.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(h.cfg.Host.StateDir, networksFile)
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("a host without a log keeps its API networks in state_dir: %v", err)
	}
	// The host gets voting peers: its next start finds green in the file.
	log := oneVoterLog(t, "h1")
	h.e.mu.Lock()
	h.e.blocks, h.e.adopt = log, []config.Network{h.e.dynNets["green"]}
	h.e.dynNets = make(map[string]config.Network)
	h.e.mu.Unlock()
	h.e.routineAdopt()
	if ns := log.Networks(); len(ns) != 1 || ns[0].Def != h.e.adopt[0] {
		t.Fatalf("log holds %+v, want green as it was", ns)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the adopted networks file is still there: %v", err)
	}
	h.e.mu.Lock()
	h.e.unlockedReapply()
	h.e.mu.Unlock()
	if n, ok := findNetwork(h.e.Networks(), "green"); !ok || n.Error != "" {
		t.Fatalf("green after adoption: %+v", n)
	}
}

// TestNetworkNotCarriedBeforeCommit: a create the log cannot commit (its
// other voter is down) is not carried here meanwhile, so it can never
// share the data path with a network another host's create committed
// first; it fails with the log's no-quorum error.
func TestNetworkNotCarriedBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	h := startFakeHost(t, encaptest.NewNetwork(), nil, testConfig(t, dir, 1, 1, "blue a 10.77.0.10"))
	addrs := consensustest.FreeAddrs(t, 2)
	voters := []consensus.Voter{{Name: "h1", Addr: addrs[0]}, {Name: "h2", Addr: addrs[1]}}
	log, err := consensus.New(consensus.Config{Name: "h1", Bind: addrs[0], Voters: voters, Secret: []byte("a cluster secret of 32 bytes!!!"),
		Dir: t.TempDir(), Fast: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	h.e.mu.Lock()
	h.e.blocks = log
	h.e.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.e.CreateNetwork(ctx, api.NetworkSpec{Name: "sec", Subnet: "10.86.0.0/24"})
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err == nil || errors.Is(err, api.ErrConflict) {
				t.Fatalf("create without a quorum: %v, want it to fail for want of a quorum", err)
			}
			if _, ok := findNetwork(h.e.Networks(), "sec"); ok {
				t.Fatal("the failed create is listed")
			}
			return
		case <-time.After(20 * time.Millisecond):
			if _, ok := findNetwork(h.e.Networks(), "sec"); ok {
				t.Fatal("the network is carried before the log committed it")
			}
		}
	}
}
