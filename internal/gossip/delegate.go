package gossip

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the Cluster seen as memberlist's Delegate: it carries record
// sets and network definitions in push/pull and user messages. Its methods run on memberlist's
// goroutines and never block on the network.
type delegate Cluster

var _ memberlist.Delegate = (*delegate)(nil)

// NodeMeta implements memberlist.Delegate; no metadata is used.
func (d *delegate) NodeMeta(int) []byte { return nil }

// NotifyMsg implements memberlist.Delegate: gossip broadcasts and TCP user
// messages both arrive here. b is only valid during the call; decode copies.
func (d *delegate) NotifyMsg(b []byte) {
	c := (*Cluster)(d)
	defer c.cfg.Crash.Recover(RecoveredMessage, nil)
	m, err := decode(b)
	if err != nil {
		c.count(err, RefusedMalformed)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	switch m.Type {
	case msgState:
		c.unlockedApply(m.State, true)
	case msgNotice:
		s := m.State
		if s.Host == c.cfg.NodeName {
			return
		}
		if err := c.unlockedCheckNotice(&s, time.Now()); err != nil {
			c.count(err, RefusedVersion)
			return
		}
		if c.tab.wants(s.Host, s.Version) {
			c.queue.queue(s.Host, bytes.Clone(b))
			c.unlockedRequestPull(s.Host, s.Version)
		}
	case msgPull:
		c.unlockedSend(m.From, encode(nil, &message{Type: msgState, State: c.local}), nil)
	case msgNets:
		// An earlier version's network definitions: see network.go.
		c.l.Debug("gossip network definitions of an earlier version dropped")
	default:
		c.l.Debug("gossip message of unexpected type dropped", "type", m.Type)
	}
}

// GetBroadcasts implements memberlist.Delegate.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.get(overhead, limit)
}

// LocalState implements memberlist.Delegate: every live host's state.
func (d *delegate) LocalState(bool) []byte {
	c := (*Cluster)(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	return encode(nil, &message{Type: msgSync, States: c.tab.states()})
}

// MergeRemoteState implements memberlist.Delegate: a peer's LocalState.
func (d *delegate) MergeRemoteState(b []byte, _ bool) {
	c := (*Cluster)(d)
	defer c.cfg.Crash.Recover(RecoveredMessage, nil)
	m, err := decode(b)
	if err == nil && m.Type != msgSync && m.Type != msgStates {
		err = fmt.Errorf("push/pull state of type %d", m.Type)
	}
	if err != nil {
		c.count(err, RefusedMalformed)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, s := range m.States {
		c.unlockedApply(s, false)
	}
	// m.Nets, from an earlier version, are dropped: see network.go.
}

// events is the Cluster seen as memberlist's EventDelegate. memberlist
// calls it with its node lock held, so it must not call back into the
// Memberlist; sends go through goroutines.
type events Cluster

var _ memberlist.EventDelegate = (*events)(nil)

// NotifyJoin implements memberlist.EventDelegate. A host whose state is
// unknown (new, or wrongly declared dead) is asked for it, and
// Config.OnJoin hears of every other host that joins.
func (e *events) NotifyJoin(n *memberlist.Node) {
	c := (*Cluster)(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tab.live[n.Name] = true
	c.addrs[n.Name] = nodeCopy(n)
	delete(c.tab.failed, n.Name)
	c.numLive.Store(int32(len(c.tab.live)))
	if n.Name == c.cfg.NodeName || c.closed {
		return
	}
	c.l.Debug("member joined", "peer", n.Name)
	if c.cfg.OnJoin != nil {
		c.cfg.OnJoin(n.Name)
	}
	if ent, ok := c.tab.hosts[n.Name]; !ok || ent.dropped {
		v, _ := c.tab.version(n.Name)
		c.unlockedRequestPull(n.Name, v)
	}
}

// NotifyLeave implements memberlist.EventDelegate: the host's records go
// at once. A host that failed (rather than left) is remembered for the
// claim quorum.
func (e *events) NotifyLeave(n *memberlist.Node) {
	c := (*Cluster)(e)
	if n.Name == c.cfg.NodeName {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tab.live, n.Name)
	delete(c.addrs, n.Name)
	c.numLive.Store(int32(len(c.tab.live)))
	if n.State == memberlist.StateLeft {
		c.l.Info("member left", "peer", n.Name)
	} else {
		c.l.Warn("member failed", "peer", n.Name)
		c.tab.failed[n.Name] = time.Now()
	}
	delete(c.pulls, n.Name)
	if c.tab.drop(n.Name) {
		c.signal()
	}
}

// NotifyUpdate implements memberlist.EventDelegate; metadata is unused,
// the node is copied again all the same.
func (e *events) NotifyUpdate(n *memberlist.Node) {
	c := (*Cluster)(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tab.live[n.Name] {
		c.addrs[n.Name] = nodeCopy(n)
	}
}

// nodeCopy copies what a send needs of n. It must run while memberlist
// holds its node lock, as event delegates do.
func nodeCopy(n *memberlist.Node) *memberlist.Node {
	return &memberlist.Node{Name: n.Name, Addr: slices.Clone(n.Addr), Port: n.Port}
}

// slogWriter turns memberlist's "[LEVEL] memberlist: text" log lines into
// slog records at Debug. memberlist reports a packet or stream that fails
// authentication only by a log line; unauth is called for each.
type slogWriter struct {
	l      *slog.Logger
	unauth func()
}

func newStdLogger(l *slog.Logger, unauth func()) *log.Logger {
	return log.New(slogWriter{l.With("source", "memberlist"), unauth}, "", 0)
}

// unauthenticated reports whether a memberlist log line says that a packet
// or stream failed decryption or came unencrypted.
func unauthenticated(line []byte) bool {
	l := bytes.ToLower(line)
	return bytes.Contains(l, []byte("decrypt")) || bytes.Contains(l, []byte("not encrypted"))
}

// Write implements io.Writer.
func (w slogWriter) Write(p []byte) (int, error) {
	if w.unauth != nil && unauthenticated(p) {
		w.unauth()
	}
	if !w.l.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimSpace(string(p))
	sev := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			sev, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.l.Debug(line, "severity", sev)
	return len(p), nil
}
