package tunnel

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vxwire/vxwire/internal/atomicfile"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// Containers' TAPs outlive the daemon (see tunnel/tap: they are
// persistent). Each local endpoint with such a TAP has a record in
// state_dir/taps/, written when its port opens and removed when the port
// is detached for good. A daemon that stops (SIGTERM, a crash, kill -9,
// an upgrade) leaves the TAPs and the records; the next one reopens each
// TAP whose endpoint it attaches again with the same namespace, interface
// name, MAC and address, without touching the addresses and routes the
// container holds, so connections carry on as soon as it runs. Records
// left over at start-up (the endpoint is gone from the config or the
// API's state, or comes back with another address) have their TAP
// removed, but only in the namespace and at the interface index the
// record names: a recycled namespace path never loses or lends a link.
//
// A rootless container's TAP, which its runtime made and passed with the
// attach, is kept the same way (Passed): the daemon marks it persistent,
// and the next daemon, which may not enter the namespace, has it reopened
// by Options.NSHelper (the TAP helper, in the container's user and
// network namespaces) and checks what it gets against the record with
// the kernel (tap.AdoptKept) before it serves it. A TAP in a namespace
// the user does not own, or in another namespace than the record's, is
// refused, reported and left where it is.

// tapsDir is the folder of state_dir holding one record per kept TAP.
const tapsDir = "taps"

// tapRecord is the saved state of one endpoint's persistent TAP.
type tapRecord struct {
	Network string `json:"network"`
	Name    string `json:"name"`
	NetNS   string `json:"netns"`
	IfName  string `json:"ifname"`
	MAC     string `json:"mac"`
	Address string `json:"address"` // with the subnet length
	// DefaultRoute says whether the TAP got the namespace's default
	// route (see multinet.go); a reopened port keeps that role.
	DefaultRoute bool `json:"default_route,omitempty"`
	// Moved marks a handoff TAP that its runtime (Docker) moved into a
	// container and renamed: NetNS is empty, since no saved path names
	// that namespace, and IfName is the new name. The namespace is found
	// again by its identity (tap.FindNetNS).
	Moved bool `json:"moved,omitempty"`
	// Passed marks a TAP that a rootless container's runtime made and
	// passed with the attach: it is reached again only through the
	// NSHelper (tap.AdoptKept, tap.RemoveAdopted).
	Passed bool `json:"passed,omitempty"`
	tap.Identity
}

// path returns a path naming the namespace of r's TAP now, or "" if
// there is none (a moved TAP's container is gone).
func (r *tapRecord) path() string {
	if r.Moved {
		return tap.FindNetNS(r.Identity)
	}
	return r.NetNS
}

// tapRecordFile is the path of the record of endpoint k; network and
// endpoint names are DNS labels, so they cannot contain the separator.
func tapRecordFile(stateDir string, k epKey) string {
	return filepath.Join(stateDir, tapsDir, k.network+"."+k.name+".json")
}

// loadTAPRecords reads the records a previous daemon left in state_dir.
// Unreadable records are logged and skipped: their TAPs stay where they
// are, and a fresh attach under the same interface name will report the
// clash.
func loadTAPRecords(stateDir string, l *slog.Logger) map[epKey]tapRecord {
	out := make(map[epKey]tapRecord)
	dir := filepath.Join(stateDir, tapsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			l.Warn("cannot read kept taps", "error", err)
		}
		return out
	}
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ent.Name()))
		var r tapRecord
		if err == nil {
			r, err = decodeTAPRecord(b)
		}
		if err != nil {
			l.Warn("cannot read kept tap", "error", err, "file", ent.Name())
			continue
		}
		out[epKey{r.Network, r.Name}] = r
	}
	return out
}

// decodeTAPRecord decodes a record of state_dir/taps and checks what a
// reopen or a removal relies on: label names, an absolute namespace path,
// an interface name and a link index.
func decodeTAPRecord(b []byte) (tapRecord, error) {
	var r tapRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return tapRecord{}, err
	}
	switch {
	case config.CheckLabel(r.Network) != nil || config.CheckLabel(r.Name) != nil:
		return tapRecord{}, errors.New("not a tap record: network or name is not a label")
	case r.Moved && r.NetNS != "" || !r.Moved && !filepath.IsAbs(r.NetNS):
		return tapRecord{}, errors.New("not a tap record: netns is not an absolute path (or is set for a moved tap)")
	case r.Moved && r.Passed:
		return tapRecord{}, errors.New("not a tap record: a passed tap is not moved")
	case config.CheckIfName(r.IfName) != nil:
		return tapRecord{}, errors.New("not a tap record: bad interface name")
	case r.Index <= 0:
		return tapRecord{}, errors.New("not a tap record: no interface index")
	}
	return r, nil
}

// unlockedTakeKept returns the Identity to reopen for port p about to open
// in ep's namespace under ifname, if a kept TAP is the same endpoint
// (namespace path, interface name, MAC and address). A kept TAP that is
// not is removed first, since the new one needs its name.
func (e *Engine) unlockedTakeKept(p *port, ep config.Endpoint, ifname string) (*tap.Identity, *tapRecord) {
	r, ok := e.kept[p.key]
	if !ok {
		return nil, nil
	}
	delete(e.kept, p.key)
	same := r.MAC == p.mac.String() && r.Address == p.addr.String()
	if same && (r.Moved && ep.Handoff || !r.Moved && !ep.Handoff && r.NetNS == ep.NetNS && r.IfName == ifname) {
		id := r.Identity
		return &id, &r
	}
	e.l.Info("kept tap does not match its endpoint any more; removing it", "network", r.Network, "endpoint", r.Name,
		"address", r.Address, "mac", r.MAC, "netns", r.NetNS)
	e.removeKept(r)
	return nil, nil
}

// removeKept removes the TAP of a record no port reopened, and the record.
func (e *Engine) removeKept(r tapRecord) {
	var err error
	if path := r.path(); r.Passed {
		err = removePassed(e.opts.NSHelper, r)
	} else if path != "" { // else a moved TAP whose container is gone went with it
		err = e.opts.RemoveTAP(path, r.IfName, r.Identity)
	}
	if err != nil {
		e.l.Warn("cannot remove kept tap", "error", err, "network", r.Network, "endpoint", r.Name)
	}
	e.removeTAPRecord(epKey{r.Network, r.Name})
}

// removePassed removes the kept TAP of a passed record through h: it is
// reopened and checked as a reopen is (another namespace at the path,
// another link under the name, or a namespace the user does not own is
// left alone, with an error), then deleted. A namespace that is gone took
// its TAP with it.
func removePassed(h tap.NSHelper, r tapRecord) error {
	if _, err := os.Stat(r.NetNS); err != nil {
		return nil
	}
	if h == nil {
		return errors.New("no helper to reach the container's namespace")
	}
	if err := tap.CheckOwned(r.NetNS); err != nil {
		return err
	}
	f, sock, err := h.OpenKept(r.NetNS, r.IfName)
	if errors.Is(err, tap.ErrTAPGone) {
		return nil
	}
	if err != nil {
		return err
	}
	return tap.RemoveAdopted(f, sock, r.IfName, r.Identity)
}

// unlockedRemoveLeftovers removes the kept TAPs that no port of the first
// apply reopened: their containers left, or their endpoints were removed,
// while no daemon ran.
func (e *Engine) unlockedRemoveLeftovers() {
	for k, r := range e.kept {
		delete(e.kept, k)
		e.l.Info("removing the tap of an endpoint that is gone", "network", r.Network, "endpoint", r.Name, "netns", r.NetNS)
		e.removeKept(r)
	}
}

// saveTAPRecord writes the record of p, if its TAP outlives the daemon;
// passed says its runtime made it (Passed).
func (e *Engine) saveTAPRecord(p *port, passed bool) {
	k, ok := p.dev.(tap.Keeper)
	if !ok || !k.Persistent() {
		return
	}
	ifname := p.cfg.IfName
	if ifname == "" {
		ifname = config.DefaultIfName
	}
	e.writeTAPRecord(p.key, tapRecord{
		Network: p.key.network, Name: p.key.name, NetNS: p.cfg.NetNS, IfName: ifname,
		MAC: p.mac.String(), Address: p.addr.String(), DefaultRoute: p.defaultRoute, Passed: passed, Identity: k.Identity(),
	})
}

// writeTAPRecord saves r as the record of endpoint k.
func (e *Engine) writeTAPRecord(k epKey, r tapRecord) {
	b, err := json.Marshal(r)
	if err == nil {
		dir := filepath.Join(e.file.Host.StateDir, tapsDir)
		if err = os.MkdirAll(dir, 0o700); err == nil {
			err = atomicfile.Write(tapRecordFile(e.file.Host.StateDir, k), b, 0o600)
		}
	}
	if err != nil {
		e.l.Warn("cannot save tap record; a restart will not keep this endpoint's interface", "error", err,
			"network", k.network, "endpoint", k.name)
	}
}

// removeTAPRecord removes the record of endpoint k, if any.
func (e *Engine) removeTAPRecord(k epKey) {
	err := os.Remove(tapRecordFile(e.file.Host.StateDir, k))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.l.Warn("cannot remove tap record", "error", err, "network", k.network, "endpoint", k.name)
	}
}

// unlockedKeepPort stops p as a daemon that is going away does: the data
// path stops using it, and a persistent TAP stays in the container with
// its record, for the next daemon to reopen. Other devices are closed.
func (e *Engine) unlockedKeepPort(p *port) {
	k, ok := p.dev.(tap.Keeper)
	if p.gateway || !ok || !k.Persistent() {
		e.unlockedClosePort(p)
		return
	}
	if p.closed.Swap(true) {
		return
	}
	p.net.fdb.removePort(p)
	if err := k.Keep(); err != nil {
		e.l.Warn("cannot close tap", "error", err, "network", p.key.network, "endpoint", p.key.name)
	}
}

// reopenError reports whether err, from opening a port with a kept TAP,
// means the kept TAP is not where it was: the namespace path names another
// namespace now.
func reopenError(err error) bool { return errors.Is(err, tap.ErrNetNSChanged) }

// refusedKept reports whether err, from reopening a passed TAP, refuses
// it for good: another namespace, another link, a user namespace the
// user does not own, or no TAP left. The record goes; the endpoint fails.
func refusedKept(err error) bool {
	return reopenError(err) || errors.Is(err, tap.ErrLinkChanged) || errors.Is(err, tap.ErrNotOwned) ||
		errors.Is(err, tap.ErrTAPGone) || errors.Is(err, tap.ErrOtherNetNS)
}

// RemoveKept removes the TAPs a stopped daemon left in the containers
// (every record in stateDir/taps), the resolv.conf vxwire wrote for them
// and their records, and returns how many
// TAPs it removed. h reaches passed TAPs (a rootless container's); nil
// leaves them. It is `vxwire down`: for a host whose daemon does not
// run and whose containers should lose their vxwire interfaces, such as
// before uninstalling. Each TAP is removed only from the namespace and at
// the index its record names. The endpoints' other state stays: a later
// `vxwire up` attaches them again with new TAPs.
func RemoveKept(stateDir string, h tap.NSHelper, l *slog.Logger) (int, error) {
	var errs []error
	n := 0
	for k, r := range loadTAPRecords(stateDir, l) {
		path := r.path()
		if path == "" {
			os.Remove(tapRecordFile(stateDir, k))
			continue
		}
		remove := tap.Remove
		if r.Passed {
			remove = func(string, string, tap.Identity) error { return removePassed(h, r) }
		}
		if err := remove(path, r.IfName, r.Identity); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		removeResolvConfOf(r.NetNS)
		err := os.Remove(tapRecordFile(stateDir, k))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		l.Info("tap removed", "network", k.network, "endpoint", k.name, "netns", r.NetNS)
	}
	return n, errors.Join(errs...)
}

// handoffPoll and handoffPolls bound how long routineFollowHandoff waits
// for a runtime to move a handoff TAP: Docker moves it as soon as Join
// returns.
const (
	handoffPoll  = 100 * time.Millisecond
	handoffPolls = 600
)

// routineFollowHandoff waits until the runtime has moved p's handoff TAP
// out of the daemon's namespace, then saves where it went (Moved), so
// that a daemon restarted after a crash finds the container's interface
// again. It ends when it has saved the record, when p is closed, when the
// engine stops or after handoffPolls polls.
func (e *Engine) routineFollowHandoff(p *port, self nsID) {
	m, ok := p.dev.(tap.Mover)
	if !ok {
		return
	}
	t := time.NewTicker(handoffPoll)
	defer t.Stop()
	for range handoffPolls {
		select {
		case <-e.done:
			return
		case <-t.C:
		}
		if p.closed.Load() {
			return
		}
		id, name, err := m.Where()
		if err != nil || id.NetNSDev == self.dev && id.NetNSIno == self.ino {
			continue
		}
		e.mu.Lock()
		if !p.closed.Load() {
			e.writeTAPRecord(p.key, tapRecord{Network: p.key.network, Name: p.key.name, IfName: name,
				MAC: p.mac.String(), Address: p.addr.String(), Moved: true, Identity: id})
		}
		e.mu.Unlock()
		return
	}
}
