package gossip

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func timeNow() time.Time { return time.Now() }

// newTestCluster starts a member on loopback with short timings.
func newTestCluster(tb testing.TB, name string, seeds []netip.AddrPort, mod ...func(*Config)) *Cluster {
	tb.Helper()
	cfg := Config{
		NodeName:  name,
		BindAddr:  loopback,
		Port:      -1,
		Seeds:     seeds,
		DeadAfter: 3 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("New(%s): %v", name, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// newTestTrio starts three members that join through the first.
func newTestTrio(tb testing.TB, mod ...func(*Config)) []*Cluster {
	tb.Helper()
	c1 := newTestCluster(tb, "h1", nil, mod...)
	seeds := []netip.AddrPort{c1.Addr()}
	cs := []*Cluster{c1, newTestCluster(tb, "h2", seeds, mod...), newTestCluster(tb, "h3", seeds, mod...)}
	waitMembers(tb, cs, 3)
	return cs
}

func waitMembers(tb testing.TB, cs []*Cluster, n int) {
	tb.Helper()
	eventually(tb, 10*time.Second, func() bool {
		for _, c := range cs {
			if int(c.numLive.Load()) != n {
				return false
			}
		}
		return true
	}, "members did not converge to %d", n)
}

// crash stops c without leaving, as if its process were killed.
func crash(c *Cluster) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		_ = c.ml.Load().Shutdown()
		c.wg.Wait()
	})
}

func eventually(tb testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf(format, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rec(host, network, name, ip string) Record {
	return Record{Network: network, Name: name, IP: netip.MustParseAddr(ip), MAC: [6]byte{2, 0, 0, 0, 0, byte(len(name))}, Host: host}
}

func names(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Host+"/"+r.Name)
	}
	return out
}

func hasExactly(c *Cluster, want ...string) bool {
	return slices.Equal(names(c.Records()), want)
}

func TestReplicateRemoveAndLeave(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	cs := newTestTrio(t, func(c *Config) { c.DeadAfter = 10 * time.Second })
	for i, c := range cs {
		c.SetLocal([]Record{rec("", "blue", fmt.Sprintf("web%d", i+1), fmt.Sprintf("10.77.0.%d", 10+i))})
	}
	all := []string{"h1/web1", "h2/web2", "h3/web3"}
	for _, c := range cs {
		eventually(t, 5*time.Second, func() bool { return hasExactly(c, all...) }, "%s: records %v", c.cfg.NodeName, names(c.Records()))
	}
	if r := cs[0].Records()[1]; r.Host != "h2" || r.IP != netip.MustParseAddr("10.77.0.11") || r.MAC != [6]byte{2, 0, 0, 0, 0, 4} {
		t.Fatalf("replicated record = %+v", r)
	}

	before := cs[0].OthersChanged()
	cs[1].SetLocal(nil)
	for _, c := range cs {
		eventually(t, 5*time.Second, func() bool { return hasExactly(c, "h1/web1", "h3/web3") }, "%s after removal: %v", c.cfg.NodeName, names(c.Records()))
	}
	// Another host's change counts as one (see OthersChanged).
	if cs[0].OthersChanged() == before {
		t.Fatal("h2's removal did not count as a change of another host")
	}

	// A graceful leave removes records at once, far inside DeadAfter.
	start := time.Now()
	if err := cs[2].Close(); err != nil {
		t.Fatal(err)
	}
	if err := cs[2].Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, c := range cs[:2] {
		eventually(t, 2*time.Second, func() bool { return hasExactly(c, "h1/web1") }, "%s after leave: %v", c.cfg.NodeName, names(c.Records()))
	}
	t.Logf("records of a leaving host gone after %v", time.Since(start))
	for _, c := range cs[:2] {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChangesSignal(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	c := newTestCluster(t, "solo", nil)
	c.SetLocal([]Record{rec("", "n", "a", "10.0.0.2")})
	select {
	case <-c.Changes():
	case <-time.After(time.Second):
		t.Fatal("no change signal")
	}
	c.SetLocal([]Record{rec("", "n", "a", "10.0.0.2")}) // unchanged
	c.SetLocal([]Record{{Network: "n", Name: ""}})      // invalid, dropped
	c.SetLocal([]Record{{Network: "n", Name: ""}})
	select {
	case <-c.Changes():
	default:
		t.Fatal("no signal for a removal")
	}
	select {
	case <-c.Changes():
		t.Fatal("signals not coalesced")
	default:
	}
	if n := c.OthersChanged(); n != 0 {
		t.Fatalf("OthersChanged is %d after changes of SetLocal alone; want 0", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFailedMemberAndRestart(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	const deadAfter = 3 * time.Second
	cs := newTestTrio(t, func(c *Config) { c.DeadAfter = deadAfter })
	// Several versions, so the restarted daemon's counter is lower.
	for i := range 5 {
		cs[2].SetLocal([]Record{rec("", "blue", "old", fmt.Sprintf("10.77.0.%d", 20+i))})
	}
	for _, c := range cs[:2] {
		eventually(t, 5*time.Second, func() bool { return hasExactly(c, "h3/old") }, "%s: %v", c.cfg.NodeName, names(c.Records()))
	}
	port := cs[2].Addr().Port()

	start := time.Now()
	crash(cs[2])
	for _, c := range cs[:2] {
		eventually(t, deadAfter, func() bool { return len(c.Records()) == 0 }, "%s kept records of a dead host: %v", c.cfg.NodeName, names(c.Records()))
	}
	t.Logf("records of a crashed host gone after %v (DeadAfter %v)", time.Since(start), deadAfter)
	if ms := cs[0].Members(); len(ms) != 3 || ms[2].Alive {
		t.Fatalf("members after crash = %+v", ms)
	}

	// The same host comes back on the same port with a new daemon.
	h3 := newTestCluster(t, "h3", []netip.AddrPort{cs[0].Addr()}, func(c *Config) {
		c.DeadAfter = deadAfter
		c.Port = int(port)
	})
	h3.SetLocal([]Record{rec("", "blue", "new", "10.77.0.30")})
	for _, c := range []*Cluster{cs[0], cs[1], h3} {
		eventually(t, 10*time.Second, func() bool { return hasExactly(c, "h3/new") }, "%s after restart: %v", c.cfg.NodeName, names(c.Records()))
	}
	for _, c := range []*Cluster{cs[0], cs[1], h3} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOutrankPreviousLife(t *testing.T) {
	c := newTestCluster(t, "me", nil)
	c.mu.Lock()
	future := version{Epoch: c.local.Version.Epoch + uint64(time.Minute), Counter: 3}
	c.unlockedApply(hostState{Host: "me", Version: future, Records: []Record{rec("me", "n", "ghost", "10.0.0.9")}}, false)
	got := c.local.Version
	c.mu.Unlock()
	if got.compare(future) <= 0 {
		t.Fatalf("local version %v does not outrank %v", got, future)
	}
	if len(c.Records()) != 0 {
		t.Fatalf("records of a previous life shown: %v", c.Records())
	}
}

func TestEncryption(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	secret := func(s string) func(*Config) {
		return func(c *Config) { c.Secret = []byte(s) }
	}
	c1 := newTestCluster(t, "h1", nil, secret("right"))
	seeds := []netip.AddrPort{c1.Addr()}
	c2 := newTestCluster(t, "h2", seeds, secret("right"))
	bad := newTestCluster(t, "bad", seeds, secret("wrong"))
	plain := newTestCluster(t, "plain", seeds)
	c1.SetLocal([]Record{rec("", "blue", "web", "10.77.0.10")})
	bad.SetLocal([]Record{rec("", "blue", "evil", "10.77.0.66")})
	plain.SetLocal([]Record{rec("", "blue", "evil2", "10.77.0.67")})
	eventually(t, 5*time.Second, func() bool { return hasExactly(c2, "h1/web") }, "h2: %v", names(c2.Records()))
	// The outsiders have tried once c1 counts refusals from both.
	eventually(t, 10*time.Second, func() bool { return c1.Refused()[RefusedUnauthenticated] >= 2 },
		"c1 counts no unauthenticated gossip: %v", c1.Refused())
	for _, c := range []*Cluster{c1, c2} {
		if !hasExactly(c, "h1/web") || len(c.Members()) != 2 {
			t.Fatalf("%s accepted an outsider: records %v members %+v", c.cfg.NodeName, names(c.Records()), c.Members())
		}
	}
	for _, c := range []*Cluster{bad, plain} {
		if len(c.Members()) != 1 || len(c.Records()) != 1 {
			t.Fatalf("%s got in: records %v members %+v", c.cfg.NodeName, names(c.Records()), c.Members())
		}
	}
	for _, c := range []*Cluster{plain, bad, c2, c1} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLookupRecords: every member finds who holds an address from the
// replicated records, and stops finding it once the holder drops it.
func TestLookupRecords(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	cs := newTestTrio(t)
	ip := netip.MustParseAddr("10.77.0.10")
	cs[0].SetLocal([]Record{rec("", "blue", "web", ip.String())})
	for _, c := range cs {
		eventually(t, 5*time.Second, func() bool {
			ep, host, ok := c.Lookup("blue", ip)
			return ok && ep == "web" && host == "h1"
		}, "%s: record not replicated", c.cfg.NodeName)
	}
	if _, _, ok := cs[1].Lookup("red", ip); ok {
		t.Fatal("lookup in another network found the record")
	}
	cs[0].SetLocal(nil)
	eventually(t, 5*time.Second, func() bool { _, _, ok := cs[1].Lookup("blue", ip); return !ok }, "record still found after removal")
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{BindAddr: loopback},
		{NodeName: "a"},
		{NodeName: "a", BindAddr: netip.IPv4Unspecified()},
		{NodeName: "a", BindAddr: loopback, Port: 70000},
		{NodeName: "a", BindAddr: loopback, Secret: []byte{}},
	} {
		if _, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestLargeRecordSet checks that thousands of records replicate, and that
// a change to a set too large for a UDP broadcast travels by notice and
// pull well before the next push/pull.
func TestLargeRecordSet(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	// DeadAfter 60 s puts push/pull 30 s apart, so replication within the
	// 10 s waited below can only come from the notice and pull.
	cs := newTestTrio(t, func(c *Config) { c.DeadAfter = 60 * time.Second })
	big := func(n int, tag string) []Record {
		rs := make([]Record, n)
		for i := range rs {
			rs[i] = Record{
				Network: "blue", Name: fmt.Sprintf("%s-%05d", tag, i), Aliases: []string{"alias-" + tag},
				IP: netip.AddrFrom4([4]byte{10, 77, byte(i >> 8), byte(i)}), MAC: [6]byte{2, 0, 0, 0, byte(i >> 8), byte(i)},
			}
		}
		return rs
	}
	const n = 5000
	for round, tag := range []string{"first", "second"} {
		begin := time.Now()
		cs[0].SetLocal(big(n, tag))
		for _, c := range cs[1:] {
			eventually(t, 10*time.Second, func() bool {
				rs := c.Records()
				return len(rs) == n && rs[0].Name == tag+"-00000"
			}, "round %d: %s has %d records", round, c.cfg.NodeName, len(c.Records()))
		}
		t.Logf("%d records (%s) replicated in %v", n, tag, time.Since(begin))
	}
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
