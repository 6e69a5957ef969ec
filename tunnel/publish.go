package tunnel

// Published ports, the control side: which publishes apply (the config
// file's and the API's), where this host listens, and the table the
// listeners read (publish_proxy.go). API publishes live in the log when
// there is one, beside API networks, else in state_dir, exactly as API
// networks do (apinets.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
	"github.com/vxwire/vxwire/internal/gossip"
	"github.com/vxwire/vxwire/netstack"
)

// publishesFile holds a host's API publishes when it has no log.
const publishesFile = "publishes.json"

// pubEntry is a publish with where it comes from.
type pubEntry struct {
	def    config.Publish
	source string // "config" or "api"
	err    string // why it is not applied at all, e.g. a clash with the file
}

// listenKey identifies a listener: address and protocol/port.
func listenKey(a netip.Addr, def *config.Publish) string { return a.String() + " " + def.Key() }

// unlockedAPIPublishes returns the publishes made through the API: the
// log's, or this host's own without a log.
func (e *Engine) unlockedAPIPublishes() []config.Publish {
	var out []config.Publish
	if e.blocks != nil {
		for _, p := range e.blocks.Publishes() {
			out = append(out, p.Def)
		}
		return out
	}
	out = slices.Clone(e.dynPubs)
	return out
}

// unlockedPublishEntries returns every publish: the file's, then the
// API's; an API publish that clashes with the file's is marked.
func (e *Engine) unlockedPublishEntries() []pubEntry {
	var out []pubEntry
	for _, p := range e.file.Publishes {
		out = append(out, pubEntry{def: p, source: "config"})
	}
	for _, p := range e.unlockedAPIPublishes() {
		en := pubEntry{def: p, source: "api"}
		for _, f := range e.file.Publishes {
			if err := config.PublishClash(&p, &f); err != nil {
				en.err = fmt.Sprintf("not applied: %v in %s", err, e.file.File)
				break
			}
		}
		out = append(out, en)
	}
	return out
}

// unlockedBuildPubTable builds the listeners' view from the ports, the
// overlay's records and the peers.
func (e *Engine) unlockedBuildPubTable(entries []pubEntry) *pubTable {
	t := &pubTable{
		targets: make(map[pubNameKey][]pubTarget, len(e.ports)),
		local:   make(map[pubNameKey][]netip.Addr, len(e.ports)),
		relays:  make(map[string]netip.AddrPort),
		peerIPs: make(map[netip.Addr]bool),
		dialers: make(map[string]gatewayDialer),
		ingress: make(map[string]config.Publish),
		sealed:  make(map[string]bool),
		self:    e.cfg.Host.Address,

		tunnelRelays: make(map[string]netip.AddrPort),
		tunnelPeers:  make(map[netip.Addr]bool),
	}
	if is := e.innerStack(); is != nil {
		t.inner = is
	}
	for name, n := range e.networks {
		t.sealed[name] = n.cfg.Encrypted
	}
	for _, p := range e.ports {
		t.add(p.key.network, p.key.name, p.cfg.Aliases, p.addr.Addr(), "")
	}
	t.addRemote(e.unlockedRecords(), e.cfg.Host.Name, e.networks)
	for _, k := range t.targets {
		if len(k) > 1 { // most names have one target: skip the sort's set-up
			slices.SortFunc(k, func(a, b pubTarget) int { return a.ip.Compare(b.ip) })
		}
	}
	for _, pc := range e.cfg.Peers {
		if !pc.Kernel && !pc.Roaming() {
			t.relays[pc.Name] = netip.AddrPortFrom(pc.Address, pc.Port)
			t.peerIPs[pc.Address] = true
			if pc.HasPublicKey && t.inner != nil {
				t.tunnelRelays[pc.Name] = netip.AddrPortFrom(pc.TunnelAddress, pc.Port)
				t.tunnelPeers[pc.TunnelAddress] = true
			}
		}
	}
	for name, n := range e.networks {
		if d, ok := n.gw.gw.(gatewayDialer); ok {
			t.dialers[name] = d
		}
	}
	for _, en := range entries {
		if en.err == "" && en.def.Mode == config.ModeIngress {
			t.ingress[en.def.Key()] = en.def
		}
	}
	return t
}

// add makes ip, an endpoint on host ("" for this one), a target of its
// name and aliases in network.
func (t *pubTable) add(network, name string, aliases []string, ip netip.Addr, host string) {
	t.addName(network, name, ip, host)
	for _, a := range aliases {
		t.addName(network, a, ip, host)
	}
}

func (t *pubTable) addName(network, name string, ip netip.Addr, host string) {
	k := pubNameKey{network, strings.ToLower(name)}
	t.targets[k] = append(t.targets[k], pubTarget{ip: ip, host: host})
	if host == "" {
		t.local[k] = append(t.local[k], ip)
	}
}

// addRemote makes the other hosts' endpoints of recs targets, those of
// the networks nets this host carries that pass the network's rules. An
// encrypted network's are reached through the tunnel relay only, so live
// skips them where there is none (relayOf).
func (t *pubTable) addRemote(recs []gossip.Record, self string, nets map[string]*network) {
	for _, r := range recs {
		if remoteRecordNet(&r, self, nets) != nil {
			t.add(r.Network, r.Name, r.Aliases, r.IP, r.Host)
		}
	}
}

// unlockedSyncPublishes makes the listeners match the publishes and the
// endpoints, and the services' VIPs match the services: called whenever
// any of them changes (after every snapshot publish).
func (e *Engine) unlockedSyncPublishes() {
	if e.pub == nil || e.stopped {
		return
	}
	if e.unlockedSyncServices() {
		e.sw.publish(e.unlockedBuildSnapshot())
	}
	entries := e.unlockedPublishEntries()
	t := e.unlockedBuildPubTable(entries)
	e.pub.table.Store(t)
	want := make(map[string]config.Publish)
	errs := make(map[string]string)
	for _, en := range entries {
		k := en.def.Key()
		switch {
		case en.err != "":
			errs[k] = en.err
		case e.networks[en.def.Network] == nil:
			errs[k] = fmt.Sprintf("network %q is not carried on %s", en.def.Network, e.cfg.Host.Name)
		case en.def.Mode == config.ModeHost && len(t.local[pubNameKey{en.def.Network, en.def.Target}]) == 0:
			errs[k] = fmt.Sprintf("host mode: no endpoint %q of network %s runs on %s", en.def.Target, en.def.Network, e.cfg.Host.Name)
		default:
			want[listenKey(e.pubListenAddr(&en.def), &en.def)] = en.def
		}
	}
	for k, pl := range e.pub.active {
		if def, ok := want[k]; !ok || def != pl.def {
			pl.close()
			delete(e.pub.active, k)
		}
	}
	for k, def := range want {
		if e.pub.active[k] != nil {
			continue
		}
		pl, err := e.openPubListener(def)
		if err != nil {
			if e.pub.errs[def.Key()] != err.Error() {
				e.l.Warn("cannot listen on a published port", "port", def.Key(), "network", def.Network, "error", err)
			}
			errs[def.Key()] = err.Error()
			continue
		}
		e.pub.active[k] = pl
	}
	e.pub.errs = errs
	e.unlockedSyncRelay(len(t.ingress) > 0 && len(t.relays) > 0)
	e.unlockedSyncTunnelRelay(t.sealedIngress() && len(t.tunnelRelays) > 0)
}

// sealedIngress reports whether an ingress publish is on an encrypted
// network: only then does the tunnel relay listen.
func (t *pubTable) sealedIngress() bool {
	for _, def := range t.ingress {
		if t.sealed[def.Network] {
			return true
		}
	}
	return false
}

// innerStack is the crypto device's inner stack, or nil.
func (e *Engine) innerStack() *netstack.InnerStack {
	if e.enc == nil {
		return nil
	}
	return e.enc.Inner()
}

// pubListenAddr is where def listens on this host.
func (e *Engine) pubListenAddr(def *config.Publish) netip.Addr {
	if def.Listen.IsValid() {
		return def.Listen
	}
	return e.cfg.Host.Address
}

// openPubListener binds def's port and starts serving it.
func (e *Engine) openPubListener(def config.Publish) (*pubListener, error) {
	addr := netip.AddrPortFrom(e.pubListenAddr(&def), def.Port)
	st := e.pub.stats[def.Key()]
	if st == nil {
		st = new(pubCounters)
		e.pub.stats[def.Key()] = st
	}
	pl := &pubListener{def: def, addr: addr, stats: st, pub: e.pub}
	var err error
	if def.Proto == config.ProtoUDP {
		pl.pc, err = net.ListenPacket("udp4", addr.String())
	} else {
		pl.ln, err = net.Listen("tcp4", addr.String())
	}
	if err != nil {
		return nil, fmt.Errorf("port %s on %s is in use or cannot be bound: %w", def.Key(), addr.Addr(), err)
	}
	// A panic in the listener's own loop stops the daemon (Died), like
	// any long-lived goroutine's; one in a connection closes only that.
	pl.wg.Add(1)
	if def.Proto == config.ProtoUDP {
		pl.pub.crash.Go("publish "+def.Key(), pl.routineServeUDP)
	} else {
		pl.pub.crash.Go("publish "+def.Key(), pl.routineAcceptTCP)
	}
	return pl, nil
}

// unlockedSyncRelay opens the relay while an ingress publish may need it
// and closes it otherwise.
func (e *Engine) unlockedSyncRelay(need bool) {
	switch {
	case need && e.pub.relay == nil:
		addr := netip.AddrPortFrom(e.cfg.Host.Address, e.cfg.Host.Port)
		ln, err := net.Listen("tcp4", addr.String())
		if err != nil {
			e.l.Warn("cannot open the published-port relay", "error", err)
			return
		}
		e.pub.relay = newRelayServer(e.pub, ln, addr, false, "published-port relay")
	case !need && e.pub.relay != nil:
		e.pub.relay.close()
		e.pub.relay = nil
	}
}

// unlockedSyncTunnelRelay opens the tunnel relay on the inner stack
// while an encrypted network's ingress publish may need it, and closes it
// otherwise.
func (e *Engine) unlockedSyncTunnelRelay(need bool) {
	is := e.innerStack()
	switch {
	case need && e.pub.tunnel == nil && is != nil:
		ln, err := is.ListenTCP(e.cfg.Host.Port)
		if err != nil {
			e.l.Warn("cannot open the published-port relay inside wireguard", "error", err)
			return
		}
		addr := netip.AddrPortFrom(is.Addr(), e.cfg.Host.Port)
		e.pub.tunnel = newRelayServer(e.pub, ln, addr, true, "published-port relay in wireguard")
	case !need && e.pub.tunnel != nil:
		e.pub.tunnel.close()
		e.pub.tunnel = nil
	}
}

// unlockedClosePublishes closes every listener and the relays.
func (e *Engine) unlockedClosePublishes() {
	if e.pub == nil {
		return
	}
	for k, pl := range e.pub.active {
		pl.close()
		delete(e.pub.active, k)
	}
	for _, r := range []**relayServer{&e.pub.relay, &e.pub.tunnel} {
		if *r != nil {
			(*r).close()
			*r = nil
		}
	}
}

// Publishes lists the published ports as this host applies them.
func (e *Engine) Publishes() []api.Publish {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unlockedPublishes()
}

// unlockedPublishes lists the published ports with this host's counters.
func (e *Engine) unlockedPublishes() []api.Publish {
	t := e.pub.table.Load()
	var out []api.Publish
	for _, en := range e.unlockedPublishEntries() {
		d := en.def
		p := api.Publish{
			PublishSpec: api.PublishSpec{Network: d.Network, Port: d.Port, Proto: d.Proto, To: d.To(), Mode: d.Mode},
			Source:      en.source,
			Error:       e.pub.errs[d.Key()],
		}
		if d.Listen.IsValid() {
			p.Listen = d.Listen.String()
		}
		if pl := e.pub.active[listenKey(e.pubListenAddr(&d), &d)]; pl != nil {
			p.Address = pl.addr.String()
			p.Targets = len(pl.live(t)) // candidates would take a turn
		}
		if st := e.pub.stats[d.Key()]; st != nil {
			p.Accepted, p.Active, p.Refused = st.Accepted.Load(), st.Active.Load(), st.Refused.Load()
			p.DialErrors, p.Relayed = st.dialErrors.Load(), st.relayed.Load()
			p.BytesIn, p.BytesOut = st.BytesIn.Load(), st.BytesOut.Load()
		}
		out = append(out, p)
	}
	return out
}

// publishFromSpec converts an API publish request into a publish
// checked by the config rules.
func publishFromSpec(spec api.PublishSpec) (config.Publish, error) {
	p, err := config.NewPublish(spec.Network, spec.Port, spec.Proto, spec.To, spec.Mode, spec.Listen)
	if err != nil {
		return p, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return p, nil
}

// AddPublish publishes a port on every host.
func (e *Engine) AddPublish(ctx context.Context, spec api.PublishSpec) (api.Publish, error) {
	p, err := publishFromSpec(spec)
	if err != nil {
		return api.Publish{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return api.Publish{}, errStopped
	}
	nets := e.unlockedKnownNetworks()
	if err := config.CheckPublishNetwork(&p, nets); err != nil {
		return api.Publish{}, fmt.Errorf("%w: %v", api.ErrNotFound, err)
	}
	for _, en := range e.unlockedPublishEntries() {
		if err := config.PublishClash(&p, &en.def); err != nil {
			return api.Publish{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
	}
	if err := e.probePort(&p); err != nil {
		return api.Publish{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	if e.blocks != nil {
		err := e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.AddPublish(ctx, p) })
		switch {
		case e.stopped:
			return api.Publish{}, errStopped
		case errors.Is(err, consensus.ErrPublishConflict):
			return api.Publish{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		case err != nil:
			return api.Publish{}, fmt.Errorf("port %s not published: %w", p.Key(), err)
		}
	} else {
		e.dynPubs = append(e.dynPubs, p)
		e.writeState(publishesFile, e.dynPubs)
	}
	e.unlockedSyncPublishes()
	e.l.Info("port published", "port", p.Key(), "network", p.Network, "to", p.To(), "mode", p.Mode)
	return api.Publish{PublishSpec: spec, Source: "api", Error: e.pub.errs[p.Key()]}, nil
}

// probePort checks that this host can bind p's port where p would listen,
// so that a port in use is refused before the publish replicates.
func (e *Engine) probePort(p *config.Publish) error {
	if e.networks[p.Network] == nil || p.Mode == config.ModeHost {
		return nil
	}
	addr := netip.AddrPortFrom(e.pubListenAddr(p), p.Port).String()
	var err error
	if p.Proto == config.ProtoUDP {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp4", addr); err == nil {
			c.Close()
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp4", addr); err == nil {
			l.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("port %s on %s is in use: %v", p.Key(), e.pubListenAddr(p), err)
	}
	return nil
}

// RemovePublish removes an API publish everywhere.
func (e *Engine) RemovePublish(ctx context.Context, ref api.PublishRef) error {
	p := config.Publish{Proto: ref.Proto, Port: ref.Port}
	config.SetPublishDefaults(&p)
	if ref.Listen != "" {
		a, err := netip.ParseAddr(ref.Listen)
		if err != nil {
			return fmt.Errorf("%w: listen %q is not an IPv4 address", api.ErrInvalid, ref.Listen)
		}
		p.Listen = a
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.file.Publishes {
		if samePublish(&f, &p) {
			return fmt.Errorf("%w: %s is published in %s; remove it there", api.ErrInvalid, p.Key(), e.file.File)
		}
	}
	i := slices.IndexFunc(e.unlockedAPIPublishes(), func(o config.Publish) bool { return samePublish(&o, &p) })
	if i < 0 {
		return fmt.Errorf("%s: %w", p.Key(), api.ErrNotFound)
	}
	p.Network = e.unlockedAPIPublishes()[i].Network
	if e.blocks != nil {
		err := e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.RemovePublish(ctx, p) })
		switch {
		case e.stopped:
			return errStopped
		case errors.Is(err, consensus.ErrUnknownPublish):
			return fmt.Errorf("%s: %w", p.Key(), api.ErrNotFound)
		case err != nil:
			return fmt.Errorf("port %s not unpublished: %w", p.Key(), err)
		}
	} else {
		e.dynPubs = slices.Delete(e.dynPubs, i, i+1)
		e.writeState(publishesFile, e.dynPubs)
	}
	e.unlockedSyncPublishes()
	e.l.Info("port unpublished", "port", p.Key())
	return nil
}

func samePublish(a, b *config.Publish) bool {
	return a.Proto == b.Proto && a.Port == b.Port && a.Listen == b.Listen
}

// loadPublishes restores this host's own API publishes from state_dir;
// with a log, the log keeps them.
func (e *Engine) loadPublishes(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, publishesFile))
	if err != nil || e.blocks != nil {
		return
	}
	var list []config.Publish
	if err := json.Unmarshal(b, &list); err != nil {
		e.l.Warn("cannot restore publishes", "error", err)
		return
	}
	for _, p := range list {
		if config.CheckPublish(&p) == nil && !slices.ContainsFunc(e.dynPubs, func(o config.Publish) bool { return config.PublishClash(&p, &o) != nil }) {
			e.dynPubs = append(e.dynPubs, p)
		}
	}
}

// UnderlayAddress is the host's underlay address, where publishes listen
// by default.
func (e *Engine) UnderlayAddress() netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cfg.Host.Address
}
