package dockerplugin

// `docker run -p HOSTPORT:PORT`: Docker hands the port bindings to the
// driver in ProgramExternalConnectivity, after Join, and takes them back
// in RevokeExternalConnectivity. Each binding becomes a publish of the
// daemon's runtime (the same door as [[publish]] and `vxwire publish`) in
// host mode, to the container's endpoint, on the host's underlay address
// (or the binding's host IP): as with Docker's own -p, the port answers
// on the host that runs the container, and two hosts may publish the same
// port.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// optPortMap is the option that carries -p's bindings.
const optPortMap = "com.docker.network.portmap"

// portBinding is one of libnetwork's types.PortBinding, as JSON.
type portBinding struct {
	Proto       int
	IP          string
	Port        int
	HostIP      string
	HostPort    int
	HostPortEnd int
}

type connectivityRequest struct {
	NetworkID  string
	EndpointID string
	Options    map[string]any
}

// publisher is what the runtime offers for published ports; *tunnel.Engine
// implements it.
type publisher interface {
	api.Publisher
	UnderlayAddress() netip.Addr
}

// bindings reads -p's bindings from the options.
func bindings(opts map[string]any) ([]portBinding, error) {
	raw, ok := opts[optPortMap]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("option %s is not a list", optPortMap)
	}
	var out []portBinding
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("option %s: %v is not a port binding", optPortMap, x)
		}
		num := func(k string) int { f, _ := m[k].(float64); return int(f) }
		str := func(k string) string { s, _ := m[k].(string); return s }
		out = append(out, portBinding{Proto: num("Proto"), IP: str("IP"), Port: num("Port"),
			HostIP: str("HostIP"), HostPort: num("HostPort"), HostPortEnd: num("HostPortEnd")})
	}
	return out, nil
}

// spec turns binding b of the endpoint name on network into a publish.
func (b portBinding) spec(network, name string, host netip.Addr) (api.PublishSpec, error) {
	proto := map[int]string{6: config.ProtoTCP, 17: config.ProtoUDP}[b.Proto]
	switch {
	case proto == "":
		return api.PublishSpec{}, fmt.Errorf("-p: protocol %d: vxwire publishes tcp and udp", b.Proto)
	case b.HostPort <= 0 || b.HostPort > 65535 || b.HostPortEnd > b.HostPort:
		return api.PublishSpec{}, fmt.Errorf("-p: give the host port (HOSTPORT:%d); vxwire does not pick one or take ranges", b.Port)
	}
	listen := host.String()
	if b.HostIP != "" && b.HostIP != "0.0.0.0" && b.HostIP != "::" {
		listen = b.HostIP
	}
	s := api.PublishSpec{Network: network, Port: uint16(b.HostPort), Proto: proto,
		To: name + ":" + strconv.Itoa(b.Port), Mode: config.ModeHost, Listen: listen}
	// The rules of every door.
	if _, err := config.NewPublish(s.Network, s.Port, s.Proto, s.To, s.Mode, s.Listen); err != nil {
		return api.PublishSpec{}, fmt.Errorf("-p %d:%d: %v", b.HostPort, b.Port, err)
	}
	return s, nil
}

func (p *Plugin) programExternal(ctx context.Context, body []byte) (any, error) {
	var req connectivityRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	bs, err := bindings(req.Options)
	if err != nil || len(bs) == 0 {
		return struct{}{}, err
	}
	pub, ok := p.rt.(publisher)
	if !ok {
		return nil, errors.New("-p: this daemon does not publish ports")
	}
	p.mu.Lock()
	ep := p.eps[req.EndpointID]
	var network, name string
	if ep != nil {
		network, name = ep.net.name, ep.name
	}
	p.mu.Unlock()
	if network == "" || name == "" {
		return nil, fmt.Errorf("-p: endpoint %.12s has not joined", req.EndpointID)
	}
	var done []api.PublishRef
	for _, b := range bs {
		s, err := b.spec(network, name, pub.UnderlayAddress())
		if err == nil {
			_, err = pub.AddPublish(ctx, s)
		}
		if err != nil {
			for _, r := range done {
				_ = pub.RemovePublish(ctx, r)
			}
			return nil, err
		}
		done = append(done, api.PublishRef{Proto: s.Proto, Port: s.Port, Listen: s.Listen})
	}
	p.mu.Lock()
	if ep := p.eps[req.EndpointID]; ep != nil {
		ep.published = append(ep.published, done...)
	}
	p.mu.Unlock()
	return struct{}{}, nil
}

func (p *Plugin) revokeExternal(ctx context.Context, body []byte) (any, error) {
	var req connectivityRequest
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	return struct{}{}, p.unpublish(ctx, req.EndpointID)
}

// unpublish removes what programExternal published for an endpoint;
// removing twice succeeds.
func (p *Plugin) unpublish(ctx context.Context, endpointID string) error {
	p.mu.Lock()
	var refs []api.PublishRef
	if ep := p.eps[endpointID]; ep != nil {
		refs, ep.published = ep.published, nil
	}
	p.mu.Unlock()
	pub, ok := p.rt.(publisher)
	if !ok {
		return nil
	}
	var first error
	for _, r := range refs {
		if err := pub.RemovePublish(ctx, r); err != nil && !errors.Is(err, api.ErrNotFound) && first == nil {
			first = err
		}
	}
	return first
}
