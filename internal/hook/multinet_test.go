package hook

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// TestRunAttachSeveralNetworks checks that "blue,red" attaches eth0 to
// blue and eth1 to red with their addresses in order, that poststop
// detaches both, and that a failed second attach detaches the first.
func TestRunAttachSeveralNetworks(t *testing.T) {
	proc := pivotedProc(t, 7)
	st := State{ID: "c1", Pid: 7, Bundle: bundle(t, "web"), Annotations: map[string]string{
		AnnotationNetwork: "blue, red", AnnotationIP: ",10.78.0.9"}}
	c := &fakeClient{ep: blueEP}
	h := &Hook{Client: c, ProcRoot: proc}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(proc, "7", "ns", "net")
	want := []api.AttachRequest{
		{Network: "blue", Name: "web", NetNS: ns, ContainerID: "c1"},
		{Network: "red", Name: "web", NetNS: ns, IfName: "eth1", Address: "10.78.0.9", ContainerID: "c1"},
	}
	if fmt.Sprint(c.attaches) != fmt.Sprint(want) {
		t.Fatalf("attaches %+v, want %+v", c.attaches, want)
	}
	if err := h.Run(context.Background(), StagePoststop, st); err != nil {
		t.Fatal(err)
	}
	if len(c.detaches) != 2 || c.detaches[0].Network != "blue" || c.detaches[1].Network != "red" {
		t.Fatalf("detaches %+v, want blue and red", c.detaches)
	}

	failing := &failSecond{}
	h = &Hook{Client: failing, ProcRoot: proc}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err == nil {
		t.Fatal("a failed attach to red was not reported")
	}
	if len(failing.detaches) != 1 || failing.detaches[0].Network != "blue" {
		t.Fatalf("after red failed: detaches %+v, want blue undone", failing.detaches)
	}

	st.Annotations[AnnotationIP] = "10.77.0.2,10.78.0.2,10.79.0.2"
	if err := (&Hook{Client: &fakeClient{}, ProcRoot: proc}).Run(context.Background(), StageCreateRuntime, st); err == nil {
		t.Fatal("three addresses for two networks were accepted")
	}
}

// failSecond succeeds the first attach and fails the others.
type failSecond struct {
	fakeClient
}

func (c *failSecond) Attach(_ context.Context, req api.AttachRequest) (api.Endpoint, error) {
	c.attaches = append(c.attaches, req)
	if len(c.attaches) > 1 {
		return api.Endpoint{}, errors.New("subnet exhausted")
	}
	return blueEP, nil
}
