package gossip

import (
	"log/slog"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// bareCluster is a Cluster without memberlist, for feeding the delegate
// directly: sends fail at once (no member is known), as for a host that
// is alone.
func bareCluster(tb testing.TB, name string) *Cluster {
	cfg, err := Config{NodeName: name, BindAddr: loopback}.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{
		cfg:     cfg,
		tm:      deriveTimings(&cfg),
		l:       slog.New(slog.DiscardHandler),
		tab:     newTable(name),
		pulls:   make(map[string]version),
		addrs:   make(map[string]*memberlist.Node),
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
		joined:  make(chan struct{}),
		sends:   make(chan struct{}, maxSends),
	}
	c.local = hostState{Host: name, Version: version{Epoch: uint64(time.Now().UnixNano())}}
	c.tab.hosts[name] = &entry{state: c.local, seen: time.Now()}
	c.queue = &sendQueue{numNodes: func() int { return 1 }, mult: 4}
	tb.Cleanup(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		c.wg.Wait()
	})
	return c
}

// FuzzDelegate feeds whole messages, as memberlist hands them over, to
// both doors of the delegate: NotifyMsg (gossip broadcasts and TCP user
// messages) and MergeRemoteState (push/pull). Nothing may panic, and
// whatever is taken must pass the config rules and the bounds.
func FuzzDelegate(f *testing.F) {
	now := uint64(time.Now().UnixNano())
	for _, m := range sampleMessages() {
		for i := range m.States {
			m.States[i].Version.Epoch = now
		}
		m.State.Version.Epoch = now
		f.Add(encode(nil, m), false)
		f.Add(encode(nil, m), true)
	}
	f.Add([]byte{msgSync, 0, 0}, true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, pushPull bool) {
		c := bareCluster(t, "me")
		d := (*delegate)(c)
		if pushPull {
			d.MergeRemoteState(b, false)
		} else {
			d.NotifyMsg(b)
		}
		_ = d.LocalState(false)
		for _, r := range c.Records() {
			if r.Host == "me" {
				continue
			}
			if err := validRecord(&r); err != nil {
				t.Fatalf("record taken that fails the rules: %v", err)
			}
		}
		for _, n := range c.HostNetworks() {
			if err := checkHostNetwork(&n); err != nil {
				t.Fatalf("host network taken that fails the rules: %v", err)
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.tab.hosts) > MaxHosts {
			t.Fatalf("%d hosts kept", len(c.tab.hosts))
		}
		for h, e := range c.tab.hosts {
			if h != "me" && e.state.Version.Epoch > uint64(time.Now().Add(maxClockSkew).UnixNano()) {
				t.Fatalf("state of %s from the far future kept", h)
			}
		}
	})
}
