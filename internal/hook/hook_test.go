package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
)

// fakeClient records requests and answers with ep or err.
type fakeClient struct {
	attaches []api.AttachRequest
	detaches []api.DetachRequest
	ep       api.Endpoint
	err      error
}

var _ Client = (*fakeClient)(nil)
var _ Client = (*api.Client)(nil)

func (c *fakeClient) Attach(_ context.Context, req api.AttachRequest) (api.Endpoint, error) {
	c.attaches = append(c.attaches, req)
	return c.ep, c.err
}

func (c *fakeClient) Detach(_ context.Context, req api.DetachRequest) error {
	c.detaches = append(c.detaches, req)
	return c.err
}

var blueEP = api.Endpoint{Network: "blue", Name: "web", Address: "10.77.0.5/24", Gateway: "10.77.0.1",
	DNS: api.DNS{Nameservers: []string{"10.77.0.1"}, Search: []string{"blue"}}}

// bundle writes a bundle with config.json holding hostname and root
// path "rootfs", and rootfs/etc, and returns the bundle directory.
func bundle(t *testing.T, hostname string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rootfs", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`{"ociVersion":"1.0.2","hostname":%q,"root":{"path":"rootfs"}}`, hostname)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pivotedProc returns a fake procfs in which process pid has entered its
// root: PROC/PID/root is a directory of its own, with etc/.
func pivotedProc(t *testing.T, pid int) string {
	t.Helper()
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, fmt.Sprint(pid), "root", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	return proc
}

func TestRunAttach(t *testing.T) {
	long := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, hostname string
		st             State
		want           api.AttachRequest
	}{
		{name: "name from annotation", hostname: "host1",
			st:   State{ID: "c1", Pid: 7, Annotations: map[string]string{AnnotationNetwork: "blue", AnnotationName: "web", AnnotationIP: "10.77.0.5"}},
			want: api.AttachRequest{Network: "blue", Name: "web", Address: "10.77.0.5", ContainerID: "c1"}},
		{name: "name from hostname", hostname: "host1",
			st:   State{ID: "c1", Pid: 7, Annotations: map[string]string{AnnotationNetwork: "blue"}},
			want: api.AttachRequest{Network: "blue", Name: "host1", ContainerID: "c1"}},
		{name: "name from id", st: State{ID: "c1", Pid: 7, Annotations: map[string]string{AnnotationNetwork: "blue"}},
			want: api.AttachRequest{Network: "blue", Name: "c1", ContainerID: "c1"}},
		{name: "long id shortened", st: State{ID: long, Pid: 7, Annotations: map[string]string{AnnotationNetwork: "blue"}},
			want: api.AttachRequest{Network: "blue", Name: long[:12], ContainerID: long}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proc := pivotedProc(t, 7)
			tc.st.Bundle = bundle(t, tc.hostname)
			for _, stage := range []Stage{StageCreateRuntime, StagePrestart} {
				c := &fakeClient{ep: blueEP}
				var warn strings.Builder
				h := &Hook{Client: c, ProcRoot: proc, Warn: &warn}
				if err := h.Run(context.Background(), stage, tc.st); err != nil {
					t.Fatal(err)
				}
				tc.want.NetNS = filepath.Join(proc, "7", "ns", "net")
				if len(c.attaches) != 1 || fmt.Sprint(c.attaches[0]) != fmt.Sprint(tc.want) || len(c.detaches) != 0 {
					t.Fatalf("%s: attaches %+v detaches %+v, want %+v", stage, c.attaches, c.detaches, tc.want)
				}
				if warn.Len() != 0 {
					t.Errorf("warnings: %s", warn.String())
				}
				b, err := os.ReadFile(filepath.Join(proc, "7", "root", "etc", "resolv.conf"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), "nameserver 10.77.0.1\nsearch blue\n") {
					t.Errorf("resolv.conf:\n%s", b)
				}
			}
		})
	}
}

func TestRunDetach(t *testing.T) {
	c := &fakeClient{}
	h := &Hook{Client: c}
	// crun at poststop: status created, pid 0.
	st := State{ID: "c1", Status: "created", Annotations: map[string]string{AnnotationNetwork: "blue"}}
	if err := h.Run(context.Background(), StagePoststop, st); err != nil {
		t.Fatal(err)
	}
	want := api.DetachRequest{Network: "blue", ContainerID: "c1"}
	if len(c.detaches) != 1 || c.detaches[0] != want || len(c.attaches) != 0 {
		t.Fatalf("detaches %+v attaches %+v, want %+v", c.detaches, c.attaches, want)
	}
	c.err = fmt.Errorf("gone: %w", api.ErrNotFound)
	if err := h.Run(context.Background(), StagePoststop, st); err != nil {
		t.Errorf("detach of an unknown endpoint: %v", err)
	}
	c.err = errors.New("boom")
	if err := h.Run(context.Background(), StagePoststop, st); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("detach error: %v", err)
	}
}

func TestRunWithoutNetwork(t *testing.T) {
	c := &fakeClient{err: errors.New("must not be called")}
	h := &Hook{Client: c}
	for _, stage := range []Stage{StageCreateRuntime, StagePrestart, StagePoststop} {
		st := State{ID: "c1", Pid: 7, Annotations: map[string]string{"other": "x", AnnotationNetwork: ""}}
		if err := h.Run(context.Background(), stage, st); err != nil {
			t.Errorf("%s: %v", stage, err)
		}
	}
	if len(c.attaches)+len(c.detaches) != 0 {
		t.Errorf("calls: %+v %+v", c.attaches, c.detaches)
	}
}

func TestRunAttachErrors(t *testing.T) {
	ann := map[string]string{AnnotationNetwork: "blue"}
	h := &Hook{Client: &fakeClient{ep: blueEP}}
	if err := h.Run(context.Background(), StageCreateRuntime, State{ID: "c1", Annotations: ann}); err == nil {
		t.Error("attach without pid succeeded")
	}
	if err := h.Run(context.Background(), StageCreateRuntime, State{ID: "c1", Pid: 7, Bundle: t.TempDir(), Annotations: ann}); err == nil {
		t.Error("attach with a bundle without config.json succeeded")
	}
	// A network name the config rules refuse never reaches the daemon.
	bad := map[string]string{AnnotationNetwork: "blue,Red_1"}
	if err := h.Run(context.Background(), StageCreateRuntime, State{ID: "c1", Pid: 7, Annotations: bad}); err == nil || !strings.Contains(err.Error(), `network "Red_1"`) {
		t.Errorf("attach to network Red_1 = %v, want a refusal naming it", err)
	}
	if c := h.Client.(*fakeClient); len(c.attaches) != 0 {
		t.Errorf("the daemon was asked to attach %v", c.attaches)
	}
	h.Client = &fakeClient{err: fmt.Errorf("%w: name taken", api.ErrConflict)}
	err := h.Run(context.Background(), StageCreateRuntime, State{ID: "c1", Pid: 7, Annotations: ann})
	if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), `network "blue"`) {
		t.Errorf("attach error = %v", err)
	}
}

// TestResolvConfBeforePivot runs the hook on a process that has not
// entered its root (this test process: /proc/self/root is /): the file
// must land in the bundle's root file system, never in the host's /etc.
func TestResolvConfBeforePivot(t *testing.T) {
	b := bundle(t, "web")
	c := &fakeClient{ep: blueEP}
	var warn strings.Builder
	h := &Hook{Client: c, Warn: &warn}
	st := State{ID: "c1", Pid: os.Getpid(), Bundle: b, Annotations: map[string]string{AnnotationNetwork: "blue"}}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(b, "rootfs", "etc", "resolv.conf"))
	if err != nil || !strings.Contains(string(got), "nameserver 10.77.0.1") {
		t.Fatalf("resolv.conf = %q, %v; warnings %s", got, err, warn.String())
	}
}

// TestResolvConfStaysInRoot checks that an absolute symlink in the
// container resolves inside the container's root.
func TestResolvConfStaysInRoot(t *testing.T) {
	proc := pivotedProc(t, 9)
	outside := filepath.Join(t.TempDir(), "host-resolv.conf")
	if err := os.WriteFile(outside, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(proc, "9", "root")
	if err := os.Symlink(outside, filepath.Join(root, "etc", "resolv.conf")); err != nil {
		t.Fatal(err)
	}
	var warn strings.Builder
	h := &Hook{Client: &fakeClient{ep: blueEP}, ProcRoot: proc, Warn: &warn}
	st := State{ID: "c1", Pid: 9, Annotations: map[string]string{AnnotationNetwork: "blue"}}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "host\n" {
		t.Fatalf("a file outside the container's root changed: %q", b)
	}
	if !strings.Contains(warn.String(), "keeps its own resolv.conf") {
		t.Errorf("warnings = %q", warn.String())
	}
	// The same target inside the root is written.
	if err := os.MkdirAll(root+filepath.Dir(outside), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(root + outside); err != nil || !strings.Contains(string(b), "nameserver") {
		t.Errorf("in-root target = %q, %v", b, err)
	}
}

// serve runs the API over a unix socket with an in-memory backend that
// has network blue, and returns the socket path and the backend.
func serve(t *testing.T) (string, *apitest.Backend) {
	t.Helper()
	b := apitest.New()
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", MTU: 1450})
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewHandler(b, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, b
}

func TestMainCommand(t *testing.T) {
	sock, backend := serve(t)
	b := bundle(t, "web")
	state := func(ann string) string {
		return fmt.Sprintf(`{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":%d,"bundle":%q,"annotations":{%s}}`, os.Getpid(), b, ann)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		errRE string
	}{
		{name: "two stages", args: []string{"createRuntime", "poststop"}, code: ExitUsage, errRE: "want at most one stage"},
		{name: "bad stage", args: []string{"poststart"}, code: ExitUsage, errRE: "unknown hook stage"},
		{name: "bad flag", args: []string{"--nope", "poststop"}, code: ExitUsage, errRE: "flag provided but not defined"},
		{name: "bad state", args: []string{"poststop"}, stdin: "{", code: ExitFail, errRE: "invalid oci state"},
		{name: "no annotation, no daemon", args: []string{"--socket", missing, "createRuntime"}, stdin: state(""), code: ExitOK},
		{name: "no daemon", args: []string{"--socket", missing, "createRuntime"}, stdin: state(`"vxwire.network":"blue"`),
			code: ExitFail, errRE: "cannot attach container c1"},
		{name: "unknown network", args: []string{"--socket", sock, "createRuntime"}, stdin: state(`"vxwire.network":"red"`),
			code: ExitFail, errRE: `network "red"`},
		{name: "attach", args: []string{"--socket", sock, "createRuntime"}, stdin: state(`"vxwire.network":"blue"`), code: ExitOK},
		{name: "detach", args: []string{"--socket", sock, "poststop"}, stdin: state(`"vxwire.network":"blue"`), code: ExitOK},
		{name: "attach inferred", args: []string{"--socket", sock}, stdin: state(`"vxwire.network":"blue"`), code: ExitOK},
		{name: "detach inferred", args: []string{"--socket", sock},
			stdin: `{"id":"c1","status":"stopped","annotations":{"vxwire.network":"blue"}}`, code: ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			code := Main(tc.args, strings.NewReader(tc.stdin), &stderr, nil)
			if code != tc.code || !strings.Contains(stderr.String(), tc.errRE) {
				t.Fatalf("Main(%q) = %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.errRE)
			}
			eps := backend.Endpoints()
			switch tc.name {
			case "attach", "attach inferred":
				if len(eps) != 1 || eps[0].Name != "web" || eps[0].ContainerID != "c1" {
					t.Fatalf("endpoints after attach: %+v", eps)
				}
				if got, _ := os.ReadFile(filepath.Join(b, "rootfs", "etc", "resolv.conf")); !strings.Contains(string(got), "nameserver 10.77.0.1") {
					t.Errorf("resolv.conf = %q", got)
				}
			case "detach", "detach inferred":
				if len(eps) != 0 {
					t.Fatalf("endpoints after detach: %+v", eps)
				}
			}
		})
	}
}

func TestResolvReadOnly(t *testing.T) {
	for _, tc := range []struct {
		cfg  string
		want bool
	}{
		{`{}`, false},
		{`{"root":{"path":"rootfs","readonly":true}}`, true},
		{`{"root":{"readonly":true},"mounts":[{"destination":"/etc/resolv.conf","options":["bind","rprivate"]}]}`, false},
		{`{"mounts":[{"destination":"/etc/resolv.conf","options":["bind","ro"]}]}`, true},
		{`{"mounts":[{"destination":"/etc/","options":["ro"]},{"destination":"/etc/resolv.conf","options":["rw"]}]}`, false},
		{`{"mounts":[{"destination":"/etc/resolv.conf","options":["rw"]},{"destination":"/etc","options":["ro","bind"]}]}`, true},
		{`{"mounts":[{"destination":"/etc/hosts","options":["ro"]}]}`, false},
	} {
		var bc bundleConfig
		if err := json.Unmarshal([]byte(tc.cfg), &bc); err != nil {
			t.Fatal(err)
		}
		if got := bc.resolvReadOnly(); got != tc.want {
			t.Errorf("resolvReadOnly(%s) = %v, want %v", tc.cfg, got, tc.want)
		}
	}
}

func TestReadOnlyResolvConfKept(t *testing.T) {
	proc := pivotedProc(t, 7)
	b := t.TempDir()
	cfg := `{"root":{"path":"rootfs"},"mounts":[{"destination":"/etc/resolv.conf","type":"bind","options":["bind","ro"]}]}`
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &fakeClient{ep: blueEP}
	var warn strings.Builder
	h := &Hook{Client: c, ProcRoot: proc, Warn: &warn}
	st := State{ID: "c1", Pid: 7, Bundle: b, Annotations: map[string]string{AnnotationNetwork: "blue"}}
	if err := h.Run(context.Background(), StageCreateRuntime, st); err != nil {
		t.Fatal(err)
	}
	if len(c.attaches) != 1 || !strings.Contains(warn.String(), "read-only") {
		t.Errorf("attaches %d, warnings %q", len(c.attaches), warn.String())
	}
	if _, err := os.Stat(filepath.Join(proc, "7", "root", "etc", "resolv.conf")); !os.IsNotExist(err) {
		t.Errorf("resolv.conf written: %v", err)
	}
}
