package config

import (
	"net/netip"
	"strconv"
)

// Published ports: a port of the hosts' underlay forwarded into a network,
// to the endpoints named or aliased Target (Docker's -p and its routing
// mesh). Its rules (CheckPublish, PublishClash, NewPublish, ...) are in
// rules.go; the config file, the API, the CLI, the replicated log and the
// Docker plugin call them.

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
		if a, ok := v.ipv4(field+".listen", rp.Listen, false); ok {
			if err := CheckPublishListen(a); err != nil {
				v.errorf(field+".listen", "%v", err)
			} else {
				p.Listen = a
			}
		}
	}
	SetPublishDefaults(p)
	if err := CheckProto(p.Proto); err != nil {
		v.errorf(field+".proto", "%v", err)
	}
	if err := CheckPublishMode(p.Mode); err != nil {
		v.errorf(field+".mode", "%v", err)
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
