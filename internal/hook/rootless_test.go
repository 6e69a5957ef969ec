package hook

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// tapClient is a fakeClient that also takes passed TAPs.
type tapClient struct {
	fakeClient
	passed []*os.File
}

func (c *tapClient) AttachTAP(ctx context.Context, req api.AttachRequest, f *os.File) (api.Endpoint, error) {
	c.passed = append(c.passed, f)
	return c.Attach(ctx, req)
}

// fakeTAP records what the hook asks of its TAPMaker.
type fakeTAP struct {
	opened     []string // netns/ifname
	configured []api.Endpoint
	confErr    error
}

func (m *fakeTAP) Open(netns, ifname string) (*os.File, error) {
	m.opened = append(m.opened, netns+"/"+ifname)
	return os.Open(os.DevNull)
}

func (m *fakeTAP) Configure(netns string, ep api.Endpoint) error {
	m.configured = append(m.configured, ep)
	return m.confErr
}

// TestRootlessAttach checks the hook of a rootless runtime: it opens each
// TAP itself, passes it with the attach, configures the link from the
// answer, and detaches again when configuring fails; outside a user
// namespace it leaves everything to the daemon.
func TestRootlessAttach(t *testing.T) {
	st := State{ID: "c1", Pid: 7, Annotations: map[string]string{AnnotationNetwork: "blue,red"}}
	c := &tapClient{fakeClient: fakeClient{ep: blueEP}}
	m := &fakeTAP{}
	h := &Hook{Client: c, TAP: m, Rootless: true, ProcRoot: "/p"}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/p/7/ns/net/eth0", "/p/7/ns/net/eth1"}; len(m.opened) != 2 || m.opened[0] != want[0] || m.opened[1] != want[1] {
		t.Errorf("opened %v, want %v", m.opened, want)
	}
	if len(c.passed) != 2 || len(m.configured) != 2 || m.configured[0].Address != blueEP.Address {
		t.Errorf("passed %d TAPs, configured %v", len(c.passed), m.configured)
	}

	c = &tapClient{fakeClient: fakeClient{ep: blueEP}}
	m = &fakeTAP{confErr: errors.New("no netlink")}
	h = &Hook{Client: c, TAP: m, Rootless: true, ProcRoot: "/p"}
	st.Annotations[AnnotationNetwork] = "blue"
	if err := h.Run(context.Background(), StageCreateRuntime, st); err == nil {
		t.Fatal("a TAP that could not be configured was accepted")
	}
	if len(c.detaches) != 1 || c.detaches[0].Network != "blue" {
		t.Errorf("detaches after a failed configure: %v", c.detaches)
	}

	c = &tapClient{fakeClient: fakeClient{ep: blueEP}}
	m = &fakeTAP{}
	h = &Hook{Client: c, TAP: m, Rootless: false, ProcRoot: "/p"}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	if len(m.opened) != 0 || len(c.passed) != 0 || len(c.attaches) != 1 {
		t.Errorf("outside a user namespace: opened %v, passed %d, attaches %d", m.opened, len(c.passed), len(c.attaches))
	}
}

func TestInUserNS(t *testing.T) {
	for _, tc := range []struct {
		uidMap string
		want   bool
	}{
		{"         0          0 4294967295\n", false},
		{"         0       1001          1\n         1     100000      65536\n", true},
		{"         0       1001          1\n", true},
		{"", true},
	} {
		if got := InUserNS([]byte(tc.uidMap)); got != tc.want {
			t.Errorf("InUserNS(%q) = %v, want %v", tc.uidMap, got, tc.want)
		}
	}
}
