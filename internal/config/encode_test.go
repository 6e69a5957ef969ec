package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Encode writes c as TOML in canonical form: tables in the order host,
// peers, networks, endpoints; keys in the order of the file format; every
// default written out, derived tunnel addresses included; no comments.
// MTUs of 0, an invalid endpoint address and a nil MAC are left out, as
// they mean "detect", "allocate" and "derive"; so are unset optional keys
// and empty arrays. What Load reads from other files (keys, secret, group
// id) is not written, except the DNS servers it found in resolv.conf,
// which are written as dns_upstream. For a Config returned by Parse,
// Parse(Encode()) yields an equal Config.
func (c *Config) Encode() []byte {
	var b strings.Builder
	h := c.Host
	b.WriteString("[host]\n")
	kvString(&b, "name", h.Name)
	if h.Address.IsValid() {
		kvString(&b, "address", h.Address.String())
	}
	kvInt(&b, "port", int64(h.Port))
	kvString(&b, "state_dir", h.StateDir)
	kvString(&b, "api_socket", h.APISocket)
	if h.MTU != 0 {
		kvInt(&b, "mtu", int64(h.MTU))
	}
	if h.PrivateKeyFile != "" {
		kvString(&b, "private_key_file", h.PrivateKeyFile)
	}
	if h.SecretFile != "" {
		kvString(&b, "secret_file", h.SecretFile)
	}
	kvInt(&b, "wg_port", int64(h.WGPort))
	kvString(&b, "wg_name", h.WGName)
	if h.GossipAddress.IsValid() {
		kvString(&b, "gossip_address", h.GossipAddress.String())
	}
	if h.TunnelAddress.IsValid() {
		kvString(&b, "tunnel_address", h.TunnelAddress.String())
	}
	kvString(&b, "rotate_every", formatDuration(h.RotateEvery))
	kvInt(&b, "gossip_port", int64(h.GossipPort))
	kvInt(&b, "raft_port", int64(h.RaftPort))
	kvString(&b, "peer_timeout", formatDuration(h.PeerTimeout))
	if len(h.DNSUpstream) > 0 {
		s := make([]string, len(h.DNSUpstream))
		for i, ap := range h.DNSUpstream {
			s[i] = ap.String()
		}
		kvStrings(&b, "dns_upstream", s)
	}
	if h.Metrics.IsValid() {
		kvString(&b, "metrics", h.Metrics.String())
	}
	if h.APIGroup != "" {
		kvString(&b, "api_group", h.APIGroup)
	}
	if len(h.EgressDeny) > 0 {
		s := make([]string, len(h.EgressDeny))
		for i, r := range h.EgressDeny {
			s[i] = r.String()
		}
		kvStrings(&b, "egress_deny", s)
	}
	kvInt(&b, "flood_rate", int64(h.FloodRate))
	kvInt(&b, "flood_burst", int64(h.FloodBurst))
	if h.Procs != 0 {
		kvInt(&b, "procs", int64(h.Procs))
	}
	if h.Socks.IsValid() {
		kvString(&b, "socks", h.Socks.String())
	}
	if h.SocksOverlayOnly {
		kvBool(&b, "socks_outside", false)
	}
	for _, p := range c.Peers {
		b.WriteString("\n[[peer]]\n")
		kvString(&b, "name", p.Name)
		if p.Address.IsValid() {
			kvString(&b, "address", p.Address.String())
		}
		kvInt(&b, "port", int64(p.Port))
		if p.HasPublicKey {
			kvString(&b, "public_key", encodeKey(p.PublicKey))
		}
		kvInt(&b, "wg_port", int64(p.WGPort))
		if p.GossipAddress.IsValid() {
			kvString(&b, "gossip_address", p.GossipAddress.String())
		}
		if p.TunnelAddress.IsValid() {
			kvString(&b, "tunnel_address", p.TunnelAddress.String())
		}
		if p.Kernel {
			kvBool(&b, "kernel", true)
		}
	}
	for _, n := range c.Networks {
		b.WriteString("\n[[network]]\n")
		kvString(&b, "name", n.Name)
		kvInt(&b, "vni", int64(n.VNI))
		if n.Subnet.IsValid() {
			kvString(&b, "subnet", n.Subnet.String())
		}
		if n.Gateway.IsValid() {
			kvString(&b, "gateway", n.Gateway.String())
		}
		if n.MTU != 0 {
			kvInt(&b, "mtu", int64(n.MTU))
		}
		kvBool(&b, "encrypted", n.Encrypted)
		kvBool(&b, "egress", n.Egress)
	}
	for _, ep := range c.Endpoints {
		b.WriteString("\n[[endpoint]]\n")
		kvString(&b, "network", ep.Network)
		kvString(&b, "name", ep.Name)
		if ep.NetNS != "" { // a host endpoint has neither
			kvString(&b, "netns", ep.NetNS)
			kvString(&b, "ifname", ep.IfName)
		}
		if ep.Address.IsValid() {
			kvString(&b, "address", ep.Address.String())
		}
		if ep.MAC != nil {
			kvString(&b, "mac", ep.MAC.String())
		}
		if len(ep.Aliases) > 0 {
			kvStrings(&b, "aliases", ep.Aliases)
		}
	}
	for _, f := range c.Forwards {
		b.WriteString("\n[[forward]]\n")
		kvString(&b, "network", f.Network)
		kvString(&b, "listen", f.Listen.String())
		kvString(&b, "to", f.To)
		kvString(&b, "proto", f.Proto)
	}
	for _, x := range c.Exposes {
		b.WriteString("\n[[expose]]\n")
		kvString(&b, "network", x.Network)
		kvInt(&b, "port", int64(x.Port))
		kvString(&b, "to", x.To.String())
		kvString(&b, "proto", x.Proto)
	}
	return []byte(b.String())
}

func kvString(b *strings.Builder, key, val string) {
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(quote(val))
	b.WriteByte('\n')
}

func kvInt(b *strings.Builder, key string, val int64) {
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(strconv.FormatInt(val, 10))
	b.WriteByte('\n')
}

// formatDuration writes d as time.Duration.String does, without the zero
// minutes and seconds that it appends to whole hours and minutes: "12h",
// "10m", "1h30m".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") { // "12h0m0s" → "12h0m", "10m0s" → "10m"
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") { // "12h0m" → "12h"
		s = s[:len(s)-2]
	}
	return s
}

func kvBool(b *strings.Builder, key string, val bool) {
	b.WriteString(key)
	b.WriteString(" = ")
	b.WriteString(strconv.FormatBool(val))
	b.WriteByte('\n')
}

func kvStrings(b *strings.Builder, key string, vals []string) {
	b.WriteString(key)
	b.WriteString(" = [")
	for i, s := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(s))
	}
	b.WriteString("]\n")
}

// quote returns s as a TOML basic string. TOML allows any Unicode except
// '"', '\\' and control characters, which are escaped.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
