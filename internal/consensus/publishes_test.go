package consensus

import (
	"bytes"
	"net/netip"
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

// TestLogChecksWithConfigRules: a publish or a service arriving through
// the replicated log is applied exactly when the config rules take it
// (config.CheckPublish, config.CheckService): what any replica proposes
// or a leader replays passes the validator of the config file and the API.
func TestLogChecksWithConfigRules(t *testing.T) {
	a := &applier{f: &fsm{pins: make(map[pinKey]Pin)}}
	pubs := []func(p *config.Publish){
		func(p *config.Publish) {}, // valid
		func(p *config.Publish) { p.Listen = netip.MustParseAddr("198.18.0.1") }, // valid
		func(p *config.Publish) { p.Listen = netip.MustParseAddr("224.0.0.1") },
		func(p *config.Publish) { p.Listen = netip.MustParseAddr("fe80::1") },
		func(p *config.Publish) { p.Proto = "sctp" },
		func(p *config.Publish) { p.Mode = "global" },
		func(p *config.Publish) { p.Target = "Web_1" },
		func(p *config.Publish) { p.TargetPort = 0 },
	}
	for i, mod := range pubs {
		p := testPub(uint16(9000+i), "web")
		mod(&p)
		want := config.CheckPublish(&p)
		r := a.apply(command{Op: opPubAdd, Network: "blue", Host: "h1", Pub: &p})
		if (r.Err == "") != (want == nil) {
			t.Errorf("publish %+v: log says %q, config rules %v", p, r.Err, want)
		}
	}
	if got := len(a.f.publishes()); got != 2 {
		t.Errorf("the log holds %d publishes, want the 2 valid ones", got)
	}
	for _, s := range []config.Service{{Network: "blue", Name: "web"}, {Network: "blue", Name: "Web_1"}, {Network: "-blue", Name: "db"}} {
		want := config.CheckService(&s)
		r := a.apply(command{Op: opSvcAdd, Network: s.Network, Host: "h1", Svc: &s})
		if (r.Err == "") != (want == nil) {
			t.Errorf("service %+v: log says %q, config rules %v", s, r.Err, want)
		}
	}
	if got := len(a.f.services()); got != 1 {
		t.Errorf("the log holds %d services, want the valid one", got)
	}
}
