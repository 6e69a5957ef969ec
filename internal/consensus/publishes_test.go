package consensus

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

func testPub(port uint16, target string) config.Publish {
	return config.Publish{Network: "blue", Port: port, Proto: "tcp", Target: target, TargetPort: 80, Mode: "ingress"}
}

// TestApplyPublishesAndServices: the log keeps one publish per protocol
// and port and one service per name and network, refuses clashes and bad
// definitions, removes, and keeps both across a restart.
func TestApplyPublishesAndServices(t *testing.T) {
	path := filepath.Join(t.TempDir(), fsmFile)
	f, err := openFSM(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{f: f}
	p := testPub(8080, "web")
	if r := a.apply(command{Op: opPubAdd, Network: "blue", Host: "h1", Pub: &p}); r.Err != "" {
		t.Fatal(r.Err)
	}
	if r := a.apply(command{Op: opPubAdd, Network: "blue", Host: "h1", Pub: &p}); r.Err != "" {
		t.Fatalf("a retry of a committed add: %s", r.Err)
	}
	q := testPub(8080, "db")
	if r := a.apply(command{Op: opPubAdd, Network: "blue", Host: "h2", Pub: &q}); !r.Conflict {
		t.Fatalf("a second publish of tcp/8080: %+v", r)
	}
	bad := testPub(0, "web")
	if r := a.apply(command{Op: opPubAdd, Network: "blue", Host: "h2", Pub: &bad}); r.Err == "" {
		t.Fatal("port 0 published")
	}
	s := config.Service{Network: "blue", Name: "web", VIP: true}
	if r := a.apply(command{Op: opSvcAdd, Network: "blue", Host: "h1", Svc: &s}); r.Err != "" {
		t.Fatal(r.Err)
	}
	s2 := config.Service{Network: "blue", Name: "web"}
	if r := a.apply(command{Op: opSvcAdd, Network: "blue", Host: "h2", Svc: &s2}); !r.Conflict {
		t.Fatalf("a second service web: %+v", r)
	}
	if r := a.apply(command{Op: opSvcAdd, Network: "blue", Host: "h2", Pub: &p}); r.Err == "" {
		t.Fatal("a service command carrying a publish applied")
	}
	back, err := openFSM(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.unlockedEncode(), f.unlockedEncode()) || len(back.publishes()) != 1 || len(back.services()) != 1 {
		t.Fatalf("restart lost publishes or services: %s", back.unlockedEncode())
	}
	if r := a.apply(command{Op: opPubRemove, Network: "blue", Host: "h2", Pub: &p}); r.Err != "" {
		t.Fatal(r.Err)
	}
	if r := a.apply(command{Op: opPubRemove, Network: "blue", Host: "h2", Pub: &p}); !r.Unknown {
		t.Fatalf("removing twice: %+v", r)
	}
	if r := a.apply(command{Op: opSvcRemove, Network: "blue", Host: "h2", Svc: &s2}); r.Err != "" || len(f.services()) != 0 {
		t.Fatalf("service removal: %+v, %v", r, f.services())
	}
}
