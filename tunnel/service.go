package tunnel

// Services, the control side: which services apply (the config file's
// and the API's, the latter in the log or state_dir like API networks),
// the virtual IP each gets on this host, and what the snapshot carries
// for them (switch_vip.go, DNS).
//
// With a log, a service has one virtual IP across the overlay: the first
// host to apply it allocates the address from its own block and commits
// it, every other host adopts it (service_vip.go). Without a log (a
// single host, or a config without voting peers) the host gives a
// service a virtual IP of its own, from its own address blocks,
// persisted like an endpoint's address.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/consensus"
)

// servicesFile holds a host's API services when it has no log.
const servicesFile = "services.json"

// vipEndpoint is the IPAM name a service's VIP is held under: not a DNS
// label, so no endpoint can have it.
func vipEndpoint(name string) string { return "vip." + name }

// svcKey identifies a service: network and name.
type svcKey struct{ network, name string }

// svcEntry is a service with where it comes from.
type svcEntry struct {
	def    config.Service
	source string
	err    string // why it is not applied at all
}

// unlockedAPIServices returns the services declared through the API.
func (e *Engine) unlockedAPIServices() []config.Service {
	if e.blocks != nil {
		var out []config.Service
		for _, s := range e.blocks.Services() {
			out = append(out, s.Def)
		}
		return out
	}
	return slices.Clone(e.dynSvcs)
}

// unlockedServiceEntries returns every service: the file's, then the
// API's; an API service that the file declares too is marked.
func (e *Engine) unlockedServiceEntries() []svcEntry {
	var out []svcEntry
	for _, s := range e.file.Services {
		out = append(out, svcEntry{def: s, source: "config"})
	}
	for _, s := range e.unlockedAPIServices() {
		en := svcEntry{def: s, source: "api"}
		for _, f := range e.file.Services {
			if err := config.ServiceClash(&s, &f); err != nil {
				en.err = fmt.Sprintf("not applied: %v in %s", err, e.file.File)
			}
		}
		out = append(out, en)
	}
	return out
}

// unlockedSyncServices gives every applied VIP service of a carried
// network its VIP on this host and releases the VIPs of services gone:
// with a log, the one the log holds (service_vip.go).
// It reports whether a VIP changed.
func (e *Engine) unlockedSyncServices() bool {
	want := make(map[svcKey]config.Network)
	for _, en := range e.unlockedServiceEntries() {
		if n := e.networks[en.def.Network]; en.err == "" && en.def.VIP && n != nil {
			want[svcKey{en.def.Network, en.def.Name}] = n.cfg
		}
	}
	if e.blocks != nil {
		return e.unlockedSyncSharedVIPs(want)
	}
	changed := false
	for k := range e.vips {
		if _, ok := want[k]; !ok {
			if err := e.alloc.Release(k.network, vipEndpoint(k.name)); err != nil {
				e.l.Warn("cannot release a service's virtual IP", "network", k.network, "service", k.name, "error", err)
			}
			delete(e.vips, k)
			changed = true
		}
	}
	errs := make(map[svcKey]string)
	for k, n := range want {
		if _, ok := e.vips[k]; ok {
			continue
		}
		a, err := e.allocate(n, config.Endpoint{Network: k.network, Name: vipEndpoint(k.name)})
		if err != nil {
			if e.svcErrs[k] == "" {
				e.l.Warn("cannot give a service a virtual IP", "network", k.network, "service", k.name, "error", err)
			}
			errs[k] = fmt.Sprintf("no virtual IP: %v", err)
			continue
		}
		e.vips[k] = a
		changed = true
		e.l.Info("service has a virtual IP", "network", k.network, "service", k.name, "vip", a)
	}
	e.svcErrs = errs
	return changed
}

// unlockedAddServices adds the services to a snapshot being built, after
// the records: for each, tasks.NAME resolves to its endpoints, and for a
// VIP service NAME resolves to the VIP, proxy ARP answers for it and the
// switch spreads its flows over the endpoints.
func (e *Engine) unlockedAddServices(s *snapshot) {
	for _, en := range e.unlockedServiceEntries() {
		n := e.networks[en.def.Network]
		if en.err != "" || n == nil {
			continue
		}
		nv, network := s.byVNI[n.cfg.VNI], en.def.Network
		if s.names.fwd[network] == nil {
			s.names.fwd[network] = map[string][]netip.Addr{}
			s.names.rev[network] = map[netip.Addr][]string{}
		}
		name := strings.ToLower(en.def.Name)
		addrs := s.names.fwd[network][name]
		s.names.fwd[network][config.TasksPrefix+name] = addrs
		vip, ok := e.vips[svcKey{network, en.def.Name}]
		if !en.def.VIP || !ok {
			continue
		}
		svc := &vipService{vip: vip.As4(), mac: deriveMAC(vip), live: make(map[[4]byte]MAC, len(addrs))}
		for _, a := range addrs {
			if mac, ok := nv.neigh[a]; ok {
				svc.backends = append(svc.backends, vipBackend{ip: a.As4(), mac: mac})
				svc.live[a.As4()] = mac
			}
		}
		if nv.vips == nil {
			nv.vips = make(map[[4]byte]*vipService)
		}
		nv.vips[svc.vip] = svc
		nv.neigh[vip] = svc.mac
		s.names.fwd[network][name] = []netip.Addr{vip}
		s.names.rev[network][vip] = []string{en.def.Name}
	}
}

// Services lists the services as this host applies them.
func (e *Engine) Services() []api.Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	snap := e.sw.snap.Load()
	var out []api.Service
	for _, en := range e.unlockedServiceEntries() {
		k := svcKey{en.def.Network, en.def.Name}
		sv := api.Service{Network: k.network, Name: k.name, VIP: en.def.VIP, Source: en.source, Error: en.err}
		if sv.Error == "" {
			sv.Error = e.svcErrs[k]
		}
		if a, ok := e.vips[k]; ok {
			sv.Address = a.String()
		}
		sv.Endpoints = len(snap.names.fwd[k.network][config.TasksPrefix+strings.ToLower(k.name)])
		out = append(out, sv)
	}
	return out
}

// AddService declares a service on every host.
func (e *Engine) AddService(ctx context.Context, spec api.ServiceSpec) (api.Service, error) {
	s := config.Service{Network: spec.Network, Name: spec.Name, VIP: spec.VIP == nil || *spec.VIP}
	if err := config.CheckService(&s); err != nil {
		return api.Service{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return api.Service{}, errStopped
	}
	nets := e.unlockedKnownNetworks()
	if err := config.CheckServiceNetwork(&s, nets); err != nil {
		return api.Service{}, fmt.Errorf("%w: %v", api.ErrNotFound, err)
	}
	for _, en := range e.unlockedServiceEntries() {
		if err := config.ServiceClash(&s, &en.def); err != nil {
			return api.Service{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		}
	}
	if e.blocks != nil {
		err := e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.AddService(ctx, s) })
		switch {
		case e.stopped:
			return api.Service{}, errStopped
		case errors.Is(err, consensus.ErrServiceConflict):
			return api.Service{}, fmt.Errorf("%w: %v", api.ErrConflict, err)
		case err != nil:
			return api.Service{}, fmt.Errorf("service %q not added: %w", s.Name, err)
		}
	} else {
		e.dynSvcs = append(e.dynSvcs, s)
		e.writeState(servicesFile, e.dynSvcs)
	}
	e.unlockedSyncPublishes()
	e.l.Info("service added", "network", s.Network, "service", s.Name, "vip", s.VIP)
	out := api.Service{Network: s.Network, Name: s.Name, VIP: s.VIP, Source: "api", Error: e.svcErrs[svcKey{s.Network, s.Name}]}
	if a, ok := e.vips[svcKey{s.Network, s.Name}]; ok {
		out.Address = a.String()
	}
	return out, nil
}

// RemoveService removes an API service everywhere.
func (e *Engine) RemoveService(ctx context.Context, ref api.ServiceRef) error {
	s := config.Service{Network: ref.Network, Name: ref.Name}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.file.Services {
		if config.ServiceClash(&f, &s) != nil {
			return fmt.Errorf("%w: service %q of network %s is declared in %s; remove it there", api.ErrInvalid, s.Name, s.Network, e.file.File)
		}
	}
	i := slices.IndexFunc(e.unlockedAPIServices(), func(o config.Service) bool { return config.ServiceClash(&o, &s) != nil })
	if i < 0 {
		return fmt.Errorf("service %q of network %s: %w", s.Name, s.Network, api.ErrNotFound)
	}
	if e.blocks != nil {
		err := e.unlockedPropose(ctx, func(ctx context.Context) error { return e.blocks.RemoveService(ctx, s) })
		switch {
		case e.stopped:
			return errStopped
		case errors.Is(err, consensus.ErrUnknownService):
			return fmt.Errorf("service %q of network %s: %w", s.Name, s.Network, api.ErrNotFound)
		case err != nil:
			return fmt.Errorf("service %q not removed: %w", s.Name, err)
		}
	} else {
		e.dynSvcs = slices.Delete(e.dynSvcs, i, i+1)
		e.writeState(servicesFile, e.dynSvcs)
	}
	e.unlockedSyncPublishes()
	e.l.Info("service removed", "network", s.Network, "service", s.Name)
	return nil
}

// loadServices restores this host's own API services from state_dir;
// with a log, the log keeps them.
func (e *Engine) loadServices(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, servicesFile))
	if err != nil || e.blocks != nil {
		return
	}
	var list []config.Service
	if err := json.Unmarshal(b, &list); err != nil {
		e.l.Warn("cannot restore services", "error", err)
		return
	}
	for _, s := range list {
		if config.CheckService(&s) == nil && !slices.ContainsFunc(e.dynSvcs, func(o config.Service) bool { return config.ServiceClash(&s, &o) != nil }) {
			e.dynSvcs = append(e.dynSvcs, s)
		}
	}
}
