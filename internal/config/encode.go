package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Encode writes c as TOML in canonical form: tables in the order host,
// peers, networks, endpoints; keys in the order of the file format; every
// default written out; no comments. MTUs of 0, an invalid endpoint address
// and a nil MAC are left out, as they mean "detect", "allocate" and
// "derive". For a Config returned by Parse, Parse(Encode()) yields an equal
// Config.
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
	for _, p := range c.Peers {
		b.WriteString("\n[[peer]]\n")
		kvString(&b, "name", p.Name)
		if p.Address.IsValid() {
			kvString(&b, "address", p.Address.String())
		}
		kvInt(&b, "port", int64(p.Port))
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
	}
	for _, ep := range c.Endpoints {
		b.WriteString("\n[[endpoint]]\n")
		kvString(&b, "network", ep.Network)
		kvString(&b, "name", ep.Name)
		kvString(&b, "netns", ep.NetNS)
		kvString(&b, "ifname", ep.IfName)
		if ep.Address.IsValid() {
			kvString(&b, "address", ep.Address.String())
		}
		if ep.MAC != nil {
			kvString(&b, "mac", ep.MAC.String())
		}
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
