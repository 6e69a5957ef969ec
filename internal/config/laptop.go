package config

import "net/netip"

// The laptop doors: host endpoints, [host] socks, [[forward]] and
// [[expose]]. Their rules live in rules.go; this file converts the raw
// tables and runs the checks across them.

// socks reads host.socks and host.socks_outside.
func (v *validator) socks(rh *rawHost) {
	h := &v.c.Host
	if s, ok := v.str("host.socks", rh.Socks, false); ok {
		if ap, err := ParseLoopback(s); err != nil {
			v.errorf("host.socks", "%v", err)
		} else {
			h.Socks = ap
		}
	}
	if b, ok := v.boolean("host.socks_outside", rh.SocksOutside); ok {
		h.SocksOverlayOnly = !b
	}
}

func (v *validator) proto(field string, x any) string {
	s, ok := v.str(field, x, false)
	if !ok {
		return "tcp"
	}
	if err := CheckProto(s); err != nil {
		v.errorf(field, "%v", err)
		return "tcp"
	}
	return s
}

func (v *validator) forward(field string, rf *rawForward, f *Forward) {
	f.Network, _ = v.str(field+".network", rf.Network, true)
	f.Proto = v.proto(field+".proto", rf.Proto)
	if s, ok := v.str(field+".listen", rf.Listen, true); ok {
		if ap, err := ParseLoopback(s); err != nil {
			v.errorf(field+".listen", "%v", err)
		} else {
			f.Listen = ap
		}
	}
	if s, ok := v.str(field+".to", rf.To, true); ok {
		if host, port, err := ParseOverlayTarget(s); err != nil {
			v.errorf(field+".to", "%v", err)
		} else {
			f.To, f.ToHost, f.ToPort = s, host, port
		}
	}
}

func (v *validator) expose(field string, re *rawExpose, x *Expose) {
	x.Network, _ = v.str(field+".network", re.Network, true)
	x.Proto = v.proto(field+".proto", re.Proto)
	if re.Port == nil {
		v.errorf(field+".port", "required key is missing")
	} else if p, ok := v.port(field+".port", re.Port); ok {
		x.Port = p
	}
	if s, ok := v.str(field+".to", re.To, true); ok {
		if ap, err := ParseLoopback(s); err != nil {
			v.errorf(field+".to", "%v", err)
		} else {
			x.To = ap
		}
	}
}

// laptopRules checks what spans tables: at most one host endpoint per
// network; every forward and expose names a network with a host endpoint;
// no two listeners of this host on one address and port (the SOCKS
// listener included), no two exposes on one port of one network.
func (v *validator) laptopRules() {
	hostEP := map[string]int{}
	for i, ep := range v.c.Endpoints {
		if !ep.IsHost() || ep.Network == "" {
			continue
		}
		if j, dup := hostEP[ep.Network]; dup {
			v.errorf(indexPath("endpoint", i)+".netns", "network %s already has a host endpoint, endpoint[%d]; a host has one per network", ep.Network, j)
			continue
		}
		hostEP[ep.Network] = i
	}
	needHost := func(field, network string) {
		if network == "" {
			return
		}
		if err := CheckNetworkNamed(network, v.c.Networks); err != nil {
			v.errorf(field+".network", "%v", err)
			return
		}
		if _, ok := hostEP[network]; !ok {
			v.errorf(field+".network", "network %s has no host endpoint on this host; add an [[endpoint]] without netns to it", network)
		}
	}
	type listenKey struct {
		proto string
		ap    netip.AddrPort
	}
	listens := map[listenKey]string{}
	if h := v.c.Host; h.Socks.IsValid() {
		listens[listenKey{"tcp", h.Socks}] = "host.socks"
	}
	for i, f := range v.c.Forwards {
		field := indexPath("forward", i)
		needHost(field, f.Network)
		if !f.Listen.IsValid() {
			continue
		}
		k := listenKey{f.Proto, f.Listen}
		if other, dup := listens[k]; dup {
			v.errorf(field+".listen", "%s %s is already used by %s", f.Proto, f.Listen, other)
			continue
		}
		listens[k] = field
	}
	type exposeKey struct {
		network, proto string
		port           uint16
	}
	exposes := map[exposeKey]int{}
	for i, x := range v.c.Exposes {
		field := indexPath("expose", i)
		needHost(field, x.Network)
		if x.Port == 0 {
			continue
		}
		k := exposeKey{x.Network, x.Proto, x.Port}
		if j, dup := exposes[k]; dup {
			v.errorf(field+".port", "%s port %d of network %s is already exposed by expose[%d]", x.Proto, x.Port, x.Network, j)
			continue
		}
		exposes[k] = i
	}
}
