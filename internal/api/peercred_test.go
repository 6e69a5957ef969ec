//go:build unix

package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
)

// helperEnv selects helperMain when the test binary re-runs itself as
// another user; its value is the socket to call.
const helperEnv = "VXWIRE_API_TEST_HELPER"

// helperMain asks the daemon for its status and prints "ok" or the
// error; it exits 0, 3 for ErrPermission, 1 otherwise.
func helperMain() int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := api.NewClient(os.Getenv(helperEnv)).Status(ctx)
	switch {
	case err == nil:
		fmt.Println("ok")
		return 0
	case errors.Is(err, api.ErrPermission):
		fmt.Println(err)
		return 3
	default:
		fmt.Println(err)
		return 1
	}
}

// TestPeerCredentials runs a client as nobody (uid 65534) against a
// socket file that anyone may connect to, so that only the server's own
// credential check stands between it and the API.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a client as uid 65534 through SysProcAttr.Credential")
	}
	dir, err := os.MkdirTemp("", "vxwire-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// The test binary may sit in a directory nobody cannot enter; run a
	// copy.
	bin := filepath.Join(dir, "api.test")
	copyFile(t, os.Args[0], bin, 0o755)

	const apiGID = 4242 // a group nobody is not in unless the case adds it
	tests := []struct {
		name      string
		gid       int // the socket's group, -1 for none
		cred      syscall.Credential
		wantCode  int
		wantWords string
	}{
		{"not in group", 0, syscall.Credential{Uid: 65534, Gid: 65534},
			3, "permission denied: uid 65534 is neither root nor in group root"},
		{"no group configured", -1, syscall.Credential{Uid: 65534, Gid: 65534},
			3, "permission denied: uid 65534 is not root and host.api_group is not set"},
		{"primary group", apiGID, syscall.Credential{Uid: 65534, Gid: apiGID}, 0, "ok"},
		{"supplementary group", apiGID, syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{100, apiGID}}, 0, "ok"},
		{"other supplementary group", apiGID, syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{100}},
			3, "permission denied: uid 65534 is neither root nor in group"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := filepath.Join(dir, fmt.Sprintf("api%d.sock", i))
			ln, err := api.Listen(sock, tt.gid)
			if err != nil {
				t.Fatal(err)
			}
			srv := api.Serve(ln, apitest.New(), safe.Reporter{L: slog.New(slog.DiscardHandler)})
			defer srv.Close()
			if tt.gid >= 0 {
				var st syscall.Stat_t
				if err := syscall.Stat(sock, &st); err != nil || int(st.Gid) != tt.gid {
					t.Fatalf("socket group %d (%v), want %d", st.Gid, err, tt.gid)
				}
			}
			// Looser than Listen makes it, so the kernel lets anyone connect.
			if err := os.Chmod(sock, 0o666); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+sock)
			cred := tt.cred
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &cred}
			out, err := cmd.Output()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(string(out), tt.wantWords) {
				t.Fatalf("helper exit %d, output %q; want exit %d with %q", code, out, tt.wantCode, tt.wantWords)
			}
		})
	}
}

// TestRootIsPermitted checks the in-process client (root or the
// daemon's own user) against a socket of another group.
func TestRootIsPermitted(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(sock, os.Getegid())
	if err != nil {
		t.Fatal(err)
	}
	srv := api.Serve(ln, apitest.New(), safe.Reporter{L: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	if _, err := api.NewClient(sock).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
