package dockerplugin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// panickyRuntime panics when the plugin lists networks, as a bug in the
// runtime would.
type panickyRuntime struct{ *fakeRuntime }

func (panickyRuntime) Networks() []api.Network { panic("listing networks") }

// TestCallPanicRecovered: a protocol call whose handler panics is answered
// 500 with a JSON error dockerd shows, counted, and the plugin keeps
// answering other calls.
func TestCallPanicRecovered(t *testing.T) {
	rt := panickyRuntime{&fakeRuntime{Backend: apitest.New()}}
	sock := filepath.Join(t.TempDir(), "vxwire.sock")
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	var rec tally.Counts
	srv := Serve(ln, New(rt, nil, nil), safe.Reporter{L: slog.New(slog.DiscardHandler), Recovered: &rec})
	t.Cleanup(func() { srv.Close() })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	t.Cleanup(c.CloseIdleConnections)
	post := func(path, body string) (int, map[string]any) {
		resp, err := c.Post("http://plugin"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := post("/NetworkDriver.CreateNetwork", `{"NetworkID":"n1","IPv4Data":[{"AddressSpace":"vxwire","Pool":"10.99.0.0/24"}]}`)
	if code != http.StatusInternalServerError || out["Err"] == nil {
		t.Fatalf("panicking call: %d %v, want 500 with Err", code, out)
	}
	if got := rec.Snapshot()[RecoveredCall]; got != 1 {
		t.Fatalf("recovered %d calls, want 1", got)
	}
	if code, out := post("/Plugin.Activate", `{}`); code != http.StatusOK || out["Implements"] == nil {
		t.Fatalf("after the panic, Activate: %d %v", code, out)
	}
}
