package tunnel

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/tunnel/tap"
	"github.com/vxwire/vxwire/tunnel/tap/taptest"
)

// fakeKernel stands for the persistent TAPs of the kernel: links by
// namespace path, each with the identity Create gave it, kept or removed
// as the engine asks.
type fakeKernel struct {
	mu      sync.Mutex
	next    int
	links   map[string]tap.Identity // by netns path
	reopens map[string]tap.Identity // Config.Reopen of each open, by netns path
	removed []string                // netns paths RemoveTAP was called for
	closed  []string                // netns paths whose device was Closed
}

// keptDevice is a channel device that is a tap.Keeper.
type keptDevice struct {
	*taptest.ChannelDevice
	k     *fakeKernel
	netns string
	id    tap.Identity
}

func (d *keptDevice) Keep() error            { return d.ChannelDevice.Close() }
func (d *keptDevice) Identity() tap.Identity { return d.id }
func (d *keptDevice) Persistent() bool       { return true }

func (d *keptDevice) Close() error {
	d.k.mu.Lock()
	delete(d.k.links, d.netns)
	d.k.closed = append(d.k.closed, d.netns)
	d.k.mu.Unlock()
	return d.ChannelDevice.Close()
}

var _ tap.Keeper = (*keptDevice)(nil)

func (k *fakeKernel) options(o *Options) {
	o.OpenPort = func(c tap.Config, _ *slog.Logger) (tap.Device, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		id, ok := k.links[c.NetNS]
		switch {
		case c.Reopen != nil:
			k.reopens[c.NetNS] = *c.Reopen
			if ok && id != *c.Reopen {
				return nil, tap.ErrNetNSChanged
			}
		case ok:
			return nil, os.ErrExist
		}
		if !ok {
			k.next++
			id = tap.Identity{NetNSDev: 1, NetNSIno: uint64(k.next), Index: 2}
			k.links[c.NetNS] = id
		}
		return &keptDevice{ChannelDevice: taptest.NewChannelDevice(c.MTU, 64, 256), k: k, netns: c.NetNS, id: id}, nil
	}
	o.RemoveTAP = func(netns, _ string, id tap.Identity) error {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.removed = append(k.removed, netns)
		if k.links[netns] == id {
			delete(k.links, netns)
		}
		return nil
	}
}

// TestRestartKeepsTAPs stops an engine and starts another on the same
// state_dir: the TAPs are kept (not closed) at stop, reopened with the
// identity they had, the one of an endpoint dropped from the config while
// stopped is removed as a leftover, and a detach after the restart closes
// the TAP and drops its record.
func TestRestartKeepsTAPs(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ctx := context.Background()
	dir := t.TempDir()
	un := encaptest.NewNetwork()
	k := &fakeKernel{links: map[string]tap.Identity{}, reopens: map[string]tap.Identity{}}
	cfg := testConfig(t, dir, 1, 1, "blue a 10.77.0.10")
	h := startFakeHost(t, un, nil, cfg, k.options)
	nsB := netnsFile(t, dir, "b")
	if _, err := h.e.Attach(ctx, api.AttachRequest{Network: "blue", Name: "b", NetNS: nsB}); err != nil {
		t.Fatal(err)
	}
	nsA := cfg.Endpoints[0].NetNS
	idA, idB := k.links[nsA], k.links[nsB]
	records := filepath.Join(cfg.Host.StateDir, tapsDir)
	h.e.Stop()
	if len(k.closed) != 0 || len(k.links) != 2 {
		t.Fatalf("stop closed %v, links left %v; want both kept", k.closed, k.links)
	}
	for _, f := range []string{"blue.a.json", "blue.b.json"} {
		if _, err := os.Stat(filepath.Join(records, f)); err != nil {
			t.Fatalf("record %s after stop: %v", f, err)
		}
	}

	h2 := startFakeHost(t, un, nil, testConfig(t, dir, 1, 1), k.options)
	if got := k.reopens[nsB]; got != idB {
		t.Errorf("b reopened with %+v, want %+v", got, idB)
	}
	if len(k.removed) != 1 || k.removed[0] != nsA || k.links[nsA] == idA {
		t.Errorf("removed %v (links %v), want a's tap removed as a leftover", k.removed, k.links)
	}
	if _, err := os.Stat(filepath.Join(records, "blue.a.json")); err == nil {
		t.Error("the record of a outlived its removal")
	}
	if err := h2.e.Detach(ctx, api.DetachRequest{Network: "blue", Name: "b"}); err != nil {
		t.Fatal(err)
	}
	if len(k.closed) != 1 || k.closed[0] != nsB {
		t.Errorf("closed %v after detach, want b", k.closed)
	}
	if _, err := os.Stat(filepath.Join(records, "blue.b.json")); err == nil {
		t.Error("the record of b outlived its detach")
	}
}
