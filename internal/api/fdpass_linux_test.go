package api_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
)

// tapBackend is the fake backend that also takes the TAP passed with each
// attach and reports the identity of the file it got.
type tapBackend struct {
	*apitest.Backend
	got chan [2]uint64 // device and inode; zero when none came
}

func (b *tapBackend) Attach(ctx context.Context, req api.AttachRequest) (api.Endpoint, error) {
	var id [2]uint64
	if f := api.TakeTAP(ctx); f != nil {
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err == nil {
			id = [2]uint64{st.Dev, st.Ino}
		}
		f.Close()
	}
	b.got <- id
	return b.Backend.Attach(ctx, req)
}

func fileID(t *testing.T, f *os.File) [2]uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return [2]uint64{st.Dev, st.Ino}
}

// TestAttachPassesTAP checks that the descriptor AttachTAP sends reaches
// the backend as the same open file, that tap_fd without a descriptor is
// refused, and that a plain attach carries none.
func TestAttachPassesTAP(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(sock, -1)
	if err != nil {
		t.Fatal(err)
	}
	b := &tapBackend{Backend: apitest.New(), got: make(chan [2]uint64, 4)}
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", MTU: 1450, Egress: true})
	srv := api.Serve(ln, b, safe.Reporter{L: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	c := api.NewClient(sock)
	ctx := context.Background()

	r, w, err := os.Pipe() // any descriptor will do: the backend checks what it is
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := c.AttachTAP(ctx, api.AttachRequest{Network: "blue", Name: "a", NetNS: "/proc/1/ns/net"}, w); err != nil {
		t.Fatal(err)
	}
	if got, want := <-b.got, fileID(t, w); got != want {
		t.Fatalf("the backend got file %v, want the one sent, %v", got, want)
	}

	code, msg := raw(t, sock, "POST", "/v1/endpoints", strings.NewReader(`{"network":"blue","name":"b","netns":"/proc/1/ns/net","tap_fd":true}`))
	if code != 400 || !strings.Contains(msg, "no descriptor came with the request") {
		t.Fatalf("tap_fd without a descriptor: %d %q", code, msg)
	}
	if _, err := c.Attach(ctx, api.AttachRequest{Network: "blue", Name: "c", NetNS: "/proc/1/ns/net"}); err != nil {
		t.Fatal(err)
	}
	if got := <-b.got; got != [2]uint64{} {
		t.Fatalf("a plain attach carried file %v", got)
	}
}
