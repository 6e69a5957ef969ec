package dockerplugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/atomicfile"
	"github.com/vxwire/vxwire/internal/config"
)

// The plugin's state is what Docker told it and does not tell again: the
// networks created with the driver (Docker's id → subnet, options and the
// vxwire network), their endpoints (Docker's id → address, MAC, vxwire
// endpoint) and the addresses the IPAM driver reserved. dockerd keeps its
// own objects across a vxwire restart, so without this file every call
// about them after the restart (docker run on an existing network,
// network connect, disconnect, rm) would be refused or leak. Every change
// rewrites the file (atomicfile), and Restore reads it at start-up.

// StateFile is the plugin's file in the daemon's state_dir.
const StateFile = "docker.json"

// maxState bounds the state file read at start-up.
const maxState = 64 << 20

// savedState is the file's JSON form.
type savedState struct {
	Networks  []savedNet         `json:"networks"`
	Endpoints []savedEp          `json:"endpoints"`
	Reserved  []savedReservation `json:"reserved,omitempty"`
}

type savedNet struct {
	ID        string       `json:"id"`
	Subnet    netip.Prefix `json:"subnet"`
	Gateway   netip.Addr   `json:"gateway,omitzero"`
	MTU       int          `json:"mtu,omitempty"`
	Encrypted bool         `json:"encrypted,omitempty"`
	Internal  bool         `json:"internal,omitempty"`
	Name      string       `json:"name,omitempty"` // the vxwire network, once known
}

type savedEp struct {
	ID      string       `json:"id"`
	Network string       `json:"network"` // Docker's network id
	Addr    netip.Prefix `json:"address"`
	MAC     string       `json:"mac,omitempty"`
	Name    string       `json:"name,omitempty"` // the vxwire endpoint, once joined
	Handoff string       `json:"handoff"`
}

type savedReservation struct {
	Addr netip.Addr `json:"address"`
	Key  string     `json:"key"`
}

// Restore loads the state saved at path by an earlier run (none is no
// error) and saves every later change there. Entries that fail the checks
// a Docker request would fail are dropped and reported together in the
// error, the rest kept. Call it before serving.
func (p *Plugin) Restore(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.path = path
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("docker plugin: cannot read its state: %w", err)
	case len(b) > maxState:
		return fmt.Errorf("docker plugin: %s is larger than %d bytes; not read", path, maxState)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("docker plugin: %s: malformed: %w", path, err)
	}
	return p.unlockedLoad(st, path)
}

// unlockedLoad replaces the plugin's state with st, keeping only entries
// that are consistent.
func (p *Plugin) unlockedLoad(st savedState, path string) error {
	var bad []string
	p.nets, p.eps, p.reserved = map[string]*dockerNet{}, map[string]*dockerEp{}, map[netip.Addr]string{}
	for _, s := range st.Networks {
		if s.ID == "" || !s.Subnet.IsValid() || config.CheckSubnet(s.Subnet) != nil || p.nets[s.ID] != nil ||
			(s.Name != "" && config.CheckLabel(s.Name) != nil) || s.MTU < 0 {
			bad = append(bad, "network "+short(s.ID))
			continue
		}
		p.nets[s.ID] = &dockerNet{id: s.ID, subnet: s.Subnet, gateway: s.Gateway, mtu: s.MTU,
			encrypted: s.Encrypted, internal: s.Internal, name: s.Name}
	}
	for _, s := range st.Endpoints {
		n := p.nets[s.Network]
		if s.ID == "" || n == nil || p.eps[s.ID] != nil || !n.subnet.Contains(s.Addr.Addr()) ||
			s.Handoff != handoffName(s.ID) || (s.Name != "" && config.CheckLabel(s.Name) != nil) {
			bad = append(bad, "endpoint "+short(s.ID))
			continue
		}
		p.eps[s.ID] = &dockerEp{net: n, addr: s.Addr, mac: s.MAC, name: s.Name, handoff: s.Handoff}
	}
	for _, r := range st.Reserved {
		if !r.Addr.Is4() || !strings.HasPrefix(r.Key, reservationPrefix) {
			bad = append(bad, "reservation of "+r.Addr.String())
			continue
		}
		p.reserved[r.Addr] = r.Key
	}
	if len(bad) > 0 {
		return fmt.Errorf("docker plugin: %s: dropped what does not check out: %s", path, strings.Join(bad, ", "))
	}
	return nil
}

// unlockedSave writes the state file; p.mu must be held. A failed write is
// logged: the calls still succeed, and the next change writes it again.
func (p *Plugin) unlockedSave() {
	if p.path == "" {
		return
	}
	if err := atomicfile.Write(p.path, p.unlockedEncode(), 0o600); err != nil {
		p.l.Error("cannot save the docker plugin's state", "error", err)
	}
}

// unlockedEncode returns the state's JSON form, sorted so that equal
// states encode equally.
func (p *Plugin) unlockedEncode() []byte {
	var st savedState
	for _, n := range p.nets {
		st.Networks = append(st.Networks, savedNet{ID: n.id, Subnet: n.subnet, Gateway: n.gateway, MTU: n.mtu,
			Encrypted: n.encrypted, Internal: n.internal, Name: n.name})
	}
	for id, ep := range p.eps {
		st.Endpoints = append(st.Endpoints, savedEp{ID: id, Network: ep.net.id, Addr: ep.addr, MAC: ep.mac,
			Name: ep.name, Handoff: ep.handoff})
	}
	for a, k := range p.reserved {
		st.Reserved = append(st.Reserved, savedReservation{Addr: a, Key: k})
	}
	slices.SortFunc(st.Networks, func(a, b savedNet) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Endpoints, func(a, b savedEp) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Reserved, func(a, b savedReservation) int { return a.Addr.Compare(b.Addr) })
	b, _ := json.Marshal(st) // cannot fail for these types
	return b
}

// short shortens a Docker id as docker's command line does.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
