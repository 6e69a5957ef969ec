package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
	"github.com/vxwire/vxwire/internal/safe"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

func TestServeStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(sock, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := api.Status{Host: "h1", Address: "198.18.0.1:4789", Counters: api.Counters{RxFrames: 3, Drops: map[string]uint64{api.DropShort: 1}}}
	b := apitest.New()
	b.SetStatus(want)
	srv := api.Serve(ln, b, safe.Reporter{L: slog.New(slog.DiscardHandler)})
	defer srv.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	got, err := api.NewClient(sock).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("status %+v, want %+v", *got, want)
	}
	// A second daemon on the same socket is refused while the first lives.
	if _, err := api.Listen(sock, -1); err == nil {
		t.Fatal("second Listen on a live socket succeeded")
	}
}

func TestSocketPath(t *testing.T) {
	t.Setenv(api.SocketEnv, "")
	if got := api.SocketPath(""); got != api.DefaultSocket {
		t.Fatalf("default %q", got)
	}
	t.Setenv(api.SocketEnv, "/x/env.sock")
	if got := api.SocketPath(""); got != "/x/env.sock" {
		t.Fatalf("env %q", got)
	}
	if got := api.SocketPath("/x/flag.sock"); got != "/x/flag.sock" {
		t.Fatalf("flag %q", got)
	}
}

// FuzzStatusJSON checks that any status document a client may receive
// decodes without panicking and re-encodes to a fix point.
func FuzzStatusJSON(f *testing.F) {
	seed, _ := json.Marshal(api.Status{Host: "h1", Networks: []api.NetworkStatus{{Name: "blue", VNI: 256}},
		Counters: api.Counters{Drops: map[string]uint64{api.DropShort: 2}}})
	f.Add(seed)
	f.Add([]byte(`{"host":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var st api.Status
		if json.Unmarshal(b, &st) != nil {
			return
		}
		re, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var st2 api.Status
		if err := json.Unmarshal(re, &st2); err != nil {
			t.Fatal(err)
		}
		re2, _ := json.Marshal(st2)
		if string(re) != string(re2) {
			t.Fatalf("not a fix point:\n%s\n%s", re, re2)
		}
	})
}
