package dockerplugin

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
)

// busyRuntime refuses RemoveNetwork as in use while busy is above 0,
// counting it down, as when another host's last container is still in
// this host's records.
type busyRuntime struct {
	*fakeRuntime
	busy atomic.Int32
}

func (r *busyRuntime) RemoveNetwork(ctx context.Context, name string) error {
	if r.busy.Add(-1) >= 0 {
		return api.ErrConflict
	}
	return r.fakeRuntime.RemoveNetwork(ctx, name)
}

// TestRemoveLater: a docker network rm that finds the vxwire network
// still used by another host removes it once that host's use is gone,
// unless a Docker network here took the name again. Before, two hosts
// that ran docker network rm at once could each see the other's last
// container, and both kept the network for good.
func TestRemoveLater(t *testing.T) {
	rt := &busyRuntime{fakeRuntime: &fakeRuntime{Backend: apitest.New(), reserved: map[string]netip.Addr{}}}
	p := New(rt, nil, nil)
	if _, err := rt.CreateNetwork(context.Background(), api.NetworkSpec{Name: "blue", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	rt.busy.Store(2)
	p.removeLater("blue")
	if _, err := rt.Network("blue"); err == nil {
		t.Fatal("blue remains after the other host's use ended")
	}

	// A Docker network here uses the name again: left alone.
	if _, err := rt.CreateNetwork(context.Background(), api.NetworkSpec{Name: "blue", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	p.nets["n2"] = &dockerNet{id: "n2", name: "blue"}
	p.removeLater("blue")
	if _, err := rt.Network("blue"); err != nil {
		t.Fatalf("blue removed while a Docker network here uses it: %v", err)
	}
}
