package tunnel

// The laptop doors reach the overlay from the host through host
// endpoints (hostep.go): the SOCKS5 proxy here, forwards and exposes in
// doors.go. They run beside the data path: they read the snapshot the
// switch reads and never take the engine's lock per connection.
//
// How a SOCKS destination maps to the overlay (README "Laptop"):
//
//	IPv4 in the subnet of a network this host carries  that network
//	"NAME.NET", NET a network this host carries        NAME in NET
//	"NAME", a DNS label                                the one network with
//	                                                   a host endpoint here
//	                                                   that has NAME
//	anything else                                      outside: dialled from
//	                                                   the host (refused with
//	                                                   socks_outside = false)
//
// An overlay destination is dialled from the host endpoint of its
// network; a network without one here answers "network unreachable"
// (0x03), a NAME that two networks have, or none, "host unreachable"
// (0x04). Overlay subnets are never dialled from the host.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/socks"
)

// Errors of overlay resolution, each mapped to a SOCKS reply.
var (
	errNoHostEndpoint = errors.New("this host has no host endpoint on the network")
	errNoSuchName     = errors.New("no endpoint of that name")
	errAmbiguous      = errors.New("several networks have that name; write NAME.NETWORK")
)

// overlayDest is where an overlay destination is dialled from and to.
type overlayDest struct {
	network string
	from    *port // the network's host endpoint; nil when there is none
	to      netip.Addr
}

// unlockedAddHosts records each network's host endpoint in a snapshot
// being built.
func (e *Engine) unlockedAddHosts(s *snapshot) {
	s.hosts = make(map[string]*port)
	for _, p := range e.ports {
		if p.host != nil && !p.closed.Load() {
			s.hosts[p.key.network] = p
		}
	}
}

// resolveOverlay maps host (a SOCKS destination without port) to the
// overlay. overlay false means the destination is outside; err says why
// an overlay destination cannot be reached.
func (sw *Switch) resolveOverlay(host string) (d overlayDest, overlay bool, err error) {
	snap := sw.snap.Load()
	if a, perr := netip.ParseAddr(host); perr == nil {
		a = a.Unmap()
		for _, nv := range snap.byVNI {
			if nv.net.cfg.Subnet.Contains(a) {
				return snap.dest(nv.net.cfg.Name, a)
			}
		}
		return d, false, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if label, netName, ok := strings.Cut(name, "."); ok {
		if _, carried := snap.byName(netName); carried && !strings.Contains(netName, ".") {
			addrs := snap.names.fwd[netName][label]
			if len(addrs) == 0 {
				return overlayDest{network: netName}, true, fmt.Errorf("%s: %w in network %s", host, errNoSuchName, netName)
			}
			return snap.dest(netName, addrs[0])
		}
		return d, false, nil
	}
	var found []string
	for _, nv := range snap.byVNI {
		if len(snap.names.fwd[nv.net.cfg.Name][name]) > 0 {
			found = append(found, nv.net.cfg.Name)
		}
	}
	var withHost []string
	for _, n := range found {
		if snap.hosts[n] != nil {
			withHost = append(withHost, n)
		}
	}
	switch {
	case len(withHost) == 1:
		return snap.dest(withHost[0], snap.names.fwd[withHost[0]][name][0])
	case len(withHost) > 1:
		return d, true, fmt.Errorf("%s: %w (%s)", host, errAmbiguous, strings.Join(withHost, ", "))
	case len(found) > 0:
		return overlayDest{network: found[0]}, true, fmt.Errorf("%s is in network %s: %w", host, found[0], errNoHostEndpoint)
	}
	return d, false, nil
}

// byName returns the view of the network called name.
func (s *snapshot) byName(name string) (*netView, bool) {
	for _, nv := range s.byVNI {
		if nv.net.cfg.Name == name {
			return nv, true
		}
	}
	return nil, false
}

// dest is the overlay destination a in network, from its host endpoint.
func (s *snapshot) dest(network string, a netip.Addr) (overlayDest, bool, error) {
	d := overlayDest{network: network, from: s.hosts[network], to: a}
	if d.from == nil {
		return d, true, fmt.Errorf("%s is in network %s: %w", a, network, errNoHostEndpoint)
	}
	return d, true, nil
}

// dialOverlay connects from d's host endpoint to d.to:port.
func dialOverlay(ctx context.Context, network string, d overlayDest, port uint16) (net.Conn, error) {
	if d.from.closed.Load() {
		return nil, fmt.Errorf("network %s: %w", d.network, errNoHostEndpoint)
	}
	return d.from.host.DialContext(ctx, network, netip.AddrPortFrom(d.to, port).String())
}

// socksDial is the SOCKS server's Dial: overlay destinations through
// their network's host endpoint, others from the host unless outside
// is false.
func (e *Engine) socksDial(outside bool) func(ctx context.Context, network string, dst socks.Addr) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network string, dst socks.Addr) (net.Conn, error) {
		od, overlay, err := e.sw.resolveOverlay(dst.Host())
		switch {
		case errors.Is(err, errNoHostEndpoint):
			return nil, socks.Refuse(socks.RepNetUnreachable, err)
		case err != nil:
			return nil, socks.Refuse(socks.RepHostUnreachable, err)
		case overlay:
			return dialOverlay(ctx, network, od, dst.Port)
		case !outside:
			return nil, socks.Refuse(socks.RepNotAllowed, fmt.Errorf("%s is outside the overlay and host.socks_outside is false", dst.Host()))
		}
		return d.DialContext(ctx, network, dst.String())
	}
}

// openSocks starts the SOCKS5 proxy of cfg.Host.Socks, if set. Called
// once from New; closeAll stops it.
func (e *Engine) openSocks(cfg *config.Config) error {
	if !cfg.Host.Socks.IsValid() {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Host.Socks.String())
	if err != nil {
		return fmt.Errorf("%w", cfg.Errorf("host.socks", "cannot listen: %v", err))
	}
	e.socks = socks.NewServer(ln, socks.Config{
		Dial:  e.socksDial(!cfg.Host.SocksOverlayOnly),
		Crash: e.Reporter().With("component", "socks"),
	}, e.l.With("component", "socks"))
	e.l.Info("socks5 proxy listening", "address", cfg.Host.Socks.String(), "outside", !cfg.Host.SocksOverlayOnly)
	return nil
}
