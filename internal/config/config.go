package config

import (
	"bytes"
	"fmt"
	"slices"
)

// Errorf returns an error about field (a path such as "network[1].gateway"
// or "endpoint[0]") positioned at the line where the file spells it out,
// or at its table header when the key was left to its default. The daemon
// uses it to report problems found after parsing, such as an address the
// kernel refuses, against the right line. It is safe for concurrent use.
func (c *Config) Errorf(field, format string, args ...any) *Error {
	return &Error{
		File:  c.File,
		Line:  c.lines.line(field),
		Field: field,
		Msg:   fmt.Sprintf(format, args...),
	}
}

// Equal reports whether c and o describe the same configuration. File and
// line positions are ignored, so a reload of a reformatted file compares
// equal.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Host.Equal(o.Host) &&
		slices.Equal(c.Peers, o.Peers) &&
		slices.Equal(c.Networks, o.Networks) &&
		slices.EqualFunc(c.Endpoints, o.Endpoints, Endpoint.Equal) &&
		slices.Equal(c.Forwards, o.Forwards) && slices.Equal(c.Exposes, o.Exposes)
}

// Equal reports whether h and o are the same host settings, including the
// keys, secret, group id and DNS servers that Load fills in. Host holds
// slices, so == does not compile on it.
func (h Host) Equal(o Host) bool {
	return h.Name == o.Name && h.Address == o.Address && h.GossipAddress == o.GossipAddress && h.Port == o.Port &&
		h.StateDir == o.StateDir && h.APISocket == o.APISocket && h.MTU == o.MTU &&
		h.PrivateKeyFile == o.PrivateKeyFile && h.PrivateKey == o.PrivateKey &&
		h.HasPrivateKey == o.HasPrivateKey && h.SecretFile == o.SecretFile &&
		bytes.Equal(h.Secret, o.Secret) && h.WGPort == o.WGPort && h.WGName == o.WGName &&
		h.TunnelAddress == o.TunnelAddress && h.RotateEvery == o.RotateEvery && h.BehindNAT == o.BehindNAT &&
		h.GossipPort == o.GossipPort && h.RaftPort == o.RaftPort && h.PeerTimeout == o.PeerTimeout &&
		slices.Equal(h.DNSUpstream, o.DNSUpstream) && h.Metrics == o.Metrics &&
		h.APIGroup == o.APIGroup && h.APIGID == o.APIGID && h.DockerPlugin == o.DockerPlugin &&
		slices.Equal(h.EgressDeny, o.EgressDeny) &&
		h.FloodRate == o.FloodRate && h.FloodBurst == o.FloodBurst && h.Procs == o.Procs &&
		h.Rootless == o.Rootless && h.UAPIDir == o.UAPIDir &&
		h.Socks == o.Socks && h.SocksOverlayOnly == o.SocksOverlayOnly
}

// Equal reports whether e and o are the same endpoint.
func (e Endpoint) Equal(o Endpoint) bool {
	return e.Network == o.Network && e.Name == o.Name && e.NetNS == o.NetNS &&
		e.IfName == o.IfName && e.Address == o.Address && bytes.Equal(e.MAC, o.MAC) &&
		slices.Equal(e.Aliases, o.Aliases) && e.Handoff == o.Handoff
}

// Peer returns the peer called name. The pointer refers into c, which
// must not be modified.
func (c *Config) Peer(name string) (*Peer, bool) {
	i := slices.IndexFunc(c.Peers, func(p Peer) bool { return p.Name == name })
	if i < 0 {
		return nil, false
	}
	return &c.Peers[i], true
}

// Network returns the network called name. The pointer refers into c,
// which must not be modified.
func (c *Config) Network(name string) (*Network, bool) {
	i := slices.IndexFunc(c.Networks, func(n Network) bool { return n.Name == name })
	if i < 0 {
		return nil, false
	}
	return &c.Networks[i], true
}
