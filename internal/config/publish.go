package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Published ports: a port of the hosts' underlay forwarded into a network,
// to the endpoints named or aliased Target (Docker's -p and its routing
// mesh). The rules below are the one home of what a publish may be; the
// config file, the API, the CLI, the replicated log and the Docker plugin
// call them.

// Protocols and modes of a publish.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
	// ModeIngress listens on every host and forwards to the target's
	// endpoints wherever they run.
	ModeIngress = "ingress"
	// ModeHost listens only on the hosts that run an endpoint of the
	// target, and forwards to the local ones.
	ModeHost = "host"
)

// Publish is one [[publish]] table.
type Publish struct {
	// Network is the network of the target endpoints (required).
	Network string
	// Port is the port the hosts listen on, 1..65535 (required).
	Port uint16
	// Proto is "tcp" (the default) or "udp".
	Proto string
	// Target is the name or alias of the endpoints the port forwards to
	// (required; the file spells it and TargetPort as to = "NAME:PORT").
	Target string
	// TargetPort is the endpoints' port, 1..65535.
	TargetPort uint16
	// Mode is "ingress" (the default) or "host".
	Mode string
	// Listen is the host address to listen on; the zero Addr means the
	// host's underlay address.
	Listen netip.Addr
}

// Key identifies what a publish binds: its protocol and port.
func (p *Publish) Key() string { return p.Proto + "/" + strconv.Itoa(int(p.Port)) }

// To returns the target as the file spells it, "NAME:PORT".
func (p *Publish) To() string { return p.Target + ":" + strconv.Itoa(int(p.TargetPort)) }

// ParsePublishTarget parses "NAME:PORT", the to key of a publish.
func ParsePublishTarget(s string) (name string, port uint16, err error) {
	name, ps, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, fmt.Errorf("%q is not NAME:PORT", s)
	}
	if msg := checkLabel(name); msg != "" {
		return "", 0, fmt.Errorf("%q: name %s", s, msg)
	}
	x, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || x == 0 {
		return "", 0, fmt.Errorf("%q: port %q is not 1..65535", s, ps)
	}
	return name, uint16(x), nil
}

// NewPublish builds a publish from the fields as the API and the CLI
// spell them (to is "NAME:PORT", listen an address or ""), fills in the
// defaults and checks it.
func NewPublish(network string, port uint16, proto, to, mode, listen string) (Publish, error) {
	p := Publish{Network: network, Port: port, Proto: proto, Mode: mode}
	var err error
	if p.Target, p.TargetPort, err = ParsePublishTarget(to); err != nil {
		return p, fmt.Errorf("to: %w", err)
	}
	if listen != "" {
		if p.Listen, err = netip.ParseAddr(listen); err != nil {
			return p, fmt.Errorf("listen %q is not an IPv4 address", listen)
		}
	}
	SetPublishDefaults(&p)
	return p, CheckPublish(&p)
}

// SetPublishDefaults fills in a publish's defaults: tcp and ingress.
func SetPublishDefaults(p *Publish) {
	if p.Proto == "" {
		p.Proto = ProtoTCP
	}
	if p.Mode == "" {
		p.Mode = ModeIngress
	}
}

// CheckPublish reports why p, defaults filled in, cannot be a publish.
func CheckPublish(p *Publish) error {
	switch {
	case checkLabel(p.Network) != "":
		return fmt.Errorf("network %q: %s", p.Network, checkLabel(p.Network))
	case p.Port == 0:
		return errors.New("port must be 1..65535")
	case p.Proto != ProtoTCP && p.Proto != ProtoUDP:
		return fmt.Errorf("proto %q is neither %q nor %q", p.Proto, ProtoTCP, ProtoUDP)
	case checkLabel(p.Target) != "":
		return fmt.Errorf("to: name %q: %s", p.Target, checkLabel(p.Target))
	case p.TargetPort == 0:
		return errors.New("to: port must be 1..65535")
	case p.Mode != ModeIngress && p.Mode != ModeHost:
		return fmt.Errorf("mode %q is neither %q nor %q", p.Mode, ModeIngress, ModeHost)
	case p.Listen.IsValid() && (!p.Listen.Is4() || p.Listen.IsMulticast()):
		return fmt.Errorf("listen %s is not a unicast IPv4 address", p.Listen)
	}
	return nil
}

// PublishClash reports why p cannot be published beside o: both bind the
// same protocol and port on an address they share (an unset listen is
// the host's underlay address, which any other listen may be).
func PublishClash(p, o *Publish) error {
	if p.Proto != o.Proto || p.Port != o.Port {
		return nil
	}
	if p.Listen.IsValid() && o.Listen.IsValid() && p.Listen != o.Listen {
		return nil
	}
	return fmt.Errorf("%s is already published (to %s in network %s)", p.Key(), o.To(), o.Network)
}

// CheckPublishNetwork reports why p cannot forward into the network
// named p.Network among nets.
func CheckPublishNetwork(p *Publish, nets []Network) error {
	for i := range nets {
		if nets[i].Name == p.Network {
			return nil
		}
	}
	return fmt.Errorf("no network is named %q", p.Network)
}

type rawPublish struct {
	Network any `toml:"network"`
	Port    any `toml:"port"`
	Proto   any `toml:"proto"`
	To      any `toml:"to"`
	Mode    any `toml:"mode"`
	Listen  any `toml:"listen"`
}

func (v *validator) publish(field string, rp *rawPublish, p *Publish) {
	p.Network, _ = v.str(field+".network", rp.Network, true)
	if x, ok := v.integer(field+".port", rp.Port, true); ok {
		if x < 1 || x > 65535 {
			v.errorf(field+".port", "port %d is out of range 1..65535", x)
		} else {
			p.Port = uint16(x)
		}
	}
	p.Proto, _ = v.str(field+".proto", rp.Proto, false)
	p.Mode, _ = v.str(field+".mode", rp.Mode, false)
	if s, ok := v.str(field+".to", rp.To, true); ok {
		if name, port, err := ParsePublishTarget(s); err != nil {
			v.errorf(field+".to", "%v", err)
		} else {
			p.Target, p.TargetPort = name, port
		}
	}
	if rp.Listen != nil {
		p.Listen, _ = v.ipv4(field+".listen", rp.Listen, false)
	}
	SetPublishDefaults(p)
	if p.Proto != ProtoTCP && p.Proto != ProtoUDP {
		v.errorf(field+".proto", "proto %q is neither %q nor %q", p.Proto, ProtoTCP, ProtoUDP)
	}
	if p.Mode != ModeIngress && p.Mode != ModeHost {
		v.errorf(field+".mode", "mode %q is neither %q nor %q", p.Mode, ModeIngress, ModeHost)
	}
}

// publishes checks the publishes against the networks and each other.
func (v *validator) publishes() {
	for i := range v.c.Publishes {
		p := &v.c.Publishes[i]
		field := indexPath("publish", i)
		if p.Network != "" {
			if err := CheckPublishNetwork(p, v.c.Networks); err != nil {
				v.errorf(field+".network", "%v", err)
			}
		}
		if p.Port == 0 {
			continue
		}
		for j := range i {
			if err := PublishClash(p, &v.c.Publishes[j]); err != nil {
				v.errorf(field+".port", "%v by publish[%d]", err, j)
				break
			}
		}
	}
}
