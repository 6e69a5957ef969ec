package config

import (
	"fmt"
	"github.com/vxwire/vxwire/internal/ipv4"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the numeric fields.
const (
	// MinMTU is the smallest MTU accepted anywhere: the IPv4 minimum
	// datagram size every host must accept (RFC 791).
	MinMTU = ipv4.MinDatagramLen
	// MaxHostMTU is the largest underlay MTU accepted.
	MaxHostMTU = 65535
	// MaxNetworkMTU is the largest container MTU accepted (jumbo frames).
	MaxNetworkMTU = 9000
	// MaxIfNameLen is the longest interface name Linux accepts (IFNAMSIZ
	// minus the terminating NUL).
	MaxIfNameLen = 15
	// maxSocketPath is the longest unix socket path: sun_path holds 108
	// bytes including the terminating NUL.
	maxSocketPath = 107
)

// validator converts the raw decoded file into a Config, checking each
// leaf, then runs the cross-field checks. A field that fails its check is
// left at its zero value, and the cross-field checks skip zero values, so
// one mistake is reported once.
type validator struct {
	c    *Config
	errs []*Error
}

func (v *validator) errorf(field, format string, args ...any) {
	v.errs = append(v.errs, v.c.Errorf(field, format, args...))
}

func (v *validator) convert(raw *rawFile) {
	v.host(raw.Host)
	v.c.Peers = convertAll("peer", raw.Peer, v.peer)
	v.c.Networks = convertAll("network", raw.Network, v.network)
	v.c.Endpoints = convertAll("endpoint", raw.Endpoint, v.endpoint)
	v.c.Publishes = convertAll("publish", raw.Publish, v.publish)
	v.c.Services = convertAll("service", raw.Service, v.service)
	v.c.Forwards = convertAll("forward", raw.Forward, v.forward)
	v.c.Exposes = convertAll("expose", raw.Expose, v.expose)
}

// convertAll converts each table of the array name with conv.
func convertAll[R, T any](name string, raw []R, conv func(field string, r *R, t *T)) []T {
	out := make([]T, len(raw))
	for i := range raw {
		conv(indexPath(name, i), &raw[i], &out[i])
	}
	return out
}

func (v *validator) host(rh *rawHost) {
	h := &v.c.Host
	h.Port = DefaultPort
	h.StateDir = DefaultStateDir
	h.APISocket = DefaultAPISocket
	h.WGPort = DefaultWGPort
	h.WGName = DefaultWGName
	h.RotateEvery = DefaultRotateEvery
	h.GossipPort = DefaultGossipPort
	h.RaftPort = DefaultRaftPort
	h.PeerTimeout = DefaultPeerTimeout
	h.APIGID = -1
	h.FloodRate = DefaultFloodRate
	h.FloodBurst = DefaultFloodBurst
	if rh == nil {
		v.errorf("host", "missing [host] table")
		return
	}
	h.Name, _ = v.hostName("host.name", rh.Name)
	h.Address, _ = v.underlay("host.address", rh.Address)
	h.GossipAddress = h.Address
	if rh.GossipAddress != nil {
		h.GossipAddress, _ = v.underlay("host.gossip_address", rh.GossipAddress)
	}
	if p, ok := v.port("host.port", rh.Port); ok {
		h.Port = p
	}
	if s, ok := v.path("host.state_dir", rh.StateDir, false); ok {
		h.StateDir = s
	}
	if s, ok := v.path("host.api_socket", rh.APISocket, false); ok {
		if len(s) > maxSocketPath {
			v.errorf("host.api_socket", "%s is %d bytes long; unix socket paths are limited to %d", s, len(s), maxSocketPath)
		} else {
			h.APISocket = s
		}
	}
	if s, ok := v.path("host.docker_plugin", rh.DockerPlugin, false); ok {
		if len(s) > maxSocketPath {
			v.errorf("host.docker_plugin", "%s is %d bytes long; unix socket paths are limited to %d", s, len(s), maxSocketPath)
		} else {
			h.DockerPlugin = s
		}
	}
	if n, ok := v.integer("host.mtu", rh.MTU, false); ok {
		if n != 0 && (n < MinMTU || n > MaxHostMTU) {
			v.errorf("host.mtu", "mtu %d is out of range: use 0 (detect) or %d..%d", n, MinMTU, MaxHostMTU)
		} else {
			h.MTU = int(n)
		}
	}
	h.PrivateKeyFile, _ = v.path("host.private_key_file", rh.PrivateKeyFile, false)
	h.SecretFile, _ = v.path("host.secret_file", rh.SecretFile, false)
	if p, ok := v.port("host.wg_port", rh.WGPort); ok {
		h.WGPort = p
	}
	if s, ok := v.str("host.wg_name", rh.WGName, false); ok {
		if msg := checkWGName(s); msg != "" {
			v.errorf("host.wg_name", "%s", msg)
		} else {
			h.WGName = s
		}
	}
	h.TunnelAddress = DeriveTunnelAddress(h.Address)
	if rh.TunnelAddress != nil {
		h.TunnelAddress, _ = v.tunnelAddr("host.tunnel_address", rh.TunnelAddress)
	}
	if d, ok := v.duration("host.rotate_every", rh.RotateEvery); ok {
		if d != 0 && d < time.Second {
			v.errorf("host.rotate_every", "%s is too short: use 0 to disable rotation, or at least 1s", d)
		} else {
			h.RotateEvery = d
		}
	}
	if p, ok := v.port("host.gossip_port", rh.GossipPort); ok {
		h.GossipPort = p
	}
	if p, ok := v.port("host.raft_port", rh.RaftPort); ok {
		h.RaftPort = p
	}
	if d, ok := v.duration("host.peer_timeout", rh.PeerTimeout); ok {
		if d < time.Second {
			v.errorf("host.peer_timeout", "%s is too short: use at least 1s", d)
		} else {
			h.PeerTimeout = d
		}
	}
	v.dnsUpstream("host.dns_upstream", rh.DNSUpstream, h)
	v.egressDeny("host.egress_deny", rh.EgressDeny, h)
	if s, ok := v.str("host.metrics", rh.Metrics, false); ok {
		ap, err := netip.ParseAddrPort(s)
		switch {
		case err != nil || !validZone(ap.Addr().Zone()):
			v.errorf("host.metrics", "%q is not a listen address IP:PORT, such as 127.0.0.1:9100 or [::1]:9100", s)
		case ap.Port() == 0:
			v.errorf("host.metrics", "%s has port 0; choose a port", s)
		case ap.Addr().IsMulticast():
			v.errorf("host.metrics", "%s is a multicast address; use a unicast address", ap.Addr())
		default:
			h.Metrics = ap
		}
	}
	if n, ok := v.integer("host.flood_rate", rh.FloodRate, false); ok {
		if n < 0 || n > MaxFloodRate {
			v.errorf("host.flood_rate", "%d frames/s is out of range: use 0 (no limit) or 1..%d", n, MaxFloodRate)
		} else {
			h.FloodRate = int(n)
		}
	}
	if n, ok := v.integer("host.flood_burst", rh.FloodBurst, false); ok {
		if n < 1 || n > MaxFloodRate {
			v.errorf("host.flood_burst", "%d frames is out of range: use 1..%d", n, MaxFloodRate)
		} else {
			h.FloodBurst = int(n)
		}
	}
	if n, ok := v.integer("host.procs", rh.Procs, false); ok {
		if n < 0 || n > MaxProcs {
			v.errorf("host.procs", "%d threads is out of range: use 0 (automatic) or 1..%d", n, MaxProcs)
		} else {
			h.Procs = int(n)
		}
	}
	if b, ok := v.boolean("host.behind_nat", rh.BehindNAT); ok {
		h.BehindNAT = b
	}
	if b, ok := v.boolean("host.rootless", rh.Rootless); ok {
		h.Rootless = b
	}
	v.socks(rh)
	if s, ok := v.str("host.api_group", rh.APIGroup, false); ok {
		if s == "" {
			v.errorf("host.api_group", "must not be empty; leave the key out to keep the API socket to root")
		} else {
			h.APIGroup = s
		}
	}
}

// dnsUpstream sets h.DNSUpstream from an array of "IP" or "IP:PORT"
// strings. An entry that fails its check is left out.
func (v *validator) dnsUpstream(field string, x any, h *Host) {
	elems, ok := v.array(field, x)
	if !ok {
		return
	}
	seen := map[netip.AddrPort]int{}
	for i, e := range elems {
		ef := indexPath(field, i)
		s, ok := v.str(ef, e, true)
		if !ok {
			continue
		}
		ap, msg := parseUpstream(s)
		if msg != "" {
			v.errorf(ef, "%s", msg)
			continue
		}
		if j, dup := seen[ap]; dup {
			v.errorf(ef, "%s is already listed as %s", ap, indexPath(field, j))
			continue
		}
		seen[ap] = i
		h.DNSUpstream = append(h.DNSUpstream, ap)
	}
}

// parseUpstream parses a DNS server "IP" or "IP:PORT" (IPv6 with a port in
// brackets), returning why it is not one.
func parseUpstream(s string) (netip.AddrPort, string) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.AddrPort{}, fmt.Sprintf("%q is not a DNS server address: use IP or IP:PORT, such as 192.0.2.53 or 192.0.2.53:5353", s)
		}
		ap = netip.AddrPortFrom(a, DefaultDNSPort)
	}
	a := ap.Addr().Unmap()
	switch {
	case !validZone(a.Zone()):
		return netip.AddrPort{}, fmt.Sprintf("%q has an invalid IPv6 zone: use an interface name", s)
	case ap.Port() == 0:
		return netip.AddrPort{}, fmt.Sprintf("%s has port 0", s)
	case a.IsUnspecified():
		return netip.AddrPort{}, fmt.Sprintf("%s is unspecified; use the address of a DNS server", a)
	case a.IsMulticast():
		return netip.AddrPort{}, fmt.Sprintf("%s is a multicast address; use the address of a DNS server", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.AddrPort{}, fmt.Sprintf("%s is the broadcast address; use the address of a DNS server", a)
	}
	return netip.AddrPortFrom(a, ap.Port()), ""
}

// validZone reports whether z is empty or could name an interface, so that
// an address with zone z prints and parses back unchanged.
func validZone(z string) bool {
	return z == "" || checkWGName(z) == ""
}

// tunnelAddr parses an explicit tunnel address: a unicast IPv4 address.
func (v *validator) tunnelAddr(field string, x any) (netip.Addr, bool) {
	a, ok := v.ipv4(field, x, true)
	if !ok {
		return netip.Addr{}, false
	}
	switch {
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		v.errorf(field, "%s is not a unicast address; tunnel addresses are normally in 100.64.0.0/10", a)
		return netip.Addr{}, false
	}
	return a, true
}

// hostName type-checks a required host name.
func (v *validator) hostName(field string, x any) (string, bool) {
	s, ok := v.str(field, x, true)
	if !ok {
		return "", false
	}
	if err := CheckHostName(s); err != nil {
		v.errorf(field, "%v", err)
		return "", false
	}
	return s, true
}

func (v *validator) peer(field string, rp *rawPeer, p *Peer) {
	p.Name, _ = v.hostName(field+".name", rp.Name)
	if rp.Address != nil || rp.PublicKey == nil {
		// Only a peer with a public key may leave its address out: the
		// servers learn it from its WireGuard handshake.
		p.Address, _ = v.underlay(field+".address", rp.Address)
	}
	p.GossipAddress = p.Address
	if rp.GossipAddress != nil {
		p.GossipAddress, _ = v.underlay(field+".gossip_address", rp.GossipAddress)
	}
	p.Port = v.c.Host.Port
	if n, ok := v.port(field+".port", rp.Port); ok {
		p.Port = n
	}
	if s, ok := v.str(field+".public_key", rp.PublicKey, false); ok {
		switch k, why := parseKey(s); why {
		case keyFormat:
			v.errorf(field+".public_key", "%q is not a base64 WireGuard key (44 characters, as wg pubkey prints)", s)
		case keyZero:
			v.errorf(field+".public_key", "%s is the all-zero key", s)
		default:
			p.PublicKey, p.HasPublicKey = k, true
		}
	}
	p.WGPort = v.c.Host.WGPort
	if n, ok := v.port(field+".wg_port", rp.WGPort); ok {
		p.WGPort = n
	}
	p.TunnelAddress = DeriveTunnelAddress(p.Address)
	if rp.TunnelAddress != nil {
		p.TunnelAddress, _ = v.tunnelAddr(field+".tunnel_address", rp.TunnelAddress)
	}
	if b, ok := v.boolean(field+".kernel", rp.Kernel); ok {
		p.Kernel = b
	}
	if d, ok := v.duration(field+".keepalive", rp.Keepalive); ok {
		if err := CheckKeepalive(d); err != nil {
			v.errorf(field+".keepalive", "%v", err)
		} else {
			p.Keepalive = d
		}
	}
}

func (v *validator) network(field string, rn *rawNetwork, n *Network) {
	n.Name, _ = v.label(field+".name", rn.Name)
	if x, ok := v.integer(field+".vni", rn.VNI, true); ok {
		if err := CheckVNI(x); err != nil {
			v.errorf(field+".vni", "%v", err)
		} else {
			n.VNI = uint32(x)
		}
	}
	n.Subnet, _ = v.subnet(field+".subnet", rn.Subnet)
	v.gateway(field+".gateway", rn.Gateway, n)
	n.Encrypted, _ = v.boolean(field+".encrypted", rn.Encrypted)
	n.Egress = true
	if b, ok := v.boolean(field+".egress", rn.Egress); ok {
		n.Egress = b
	}
	if x, ok := v.integer(field+".mtu", rn.MTU, false); ok {
		if err := CheckNetworkMTU(x, n.Encrypted); err != nil {
			v.errorf(field+".mtu", "%v", err)
		} else {
			n.MTU = int(x)
		}
	}
}

func (v *validator) subnet(field string, x any) (netip.Prefix, bool) {
	s, ok := v.str(field, x, true)
	if !ok {
		return netip.Prefix{}, false
	}
	p, err := ParseSubnet(s)
	if err != nil {
		v.errorf(field, "%v", err)
		return netip.Prefix{}, false
	}
	return p, true
}

// gateway sets n.Gateway, defaulting to the first host address of the
// subnet. It needs n.Subnet to be set.
func (v *validator) gateway(field string, x any, n *Network) {
	if x == nil {
		if n.Subnet.IsValid() {
			n.Gateway = n.Subnet.Addr().Next()
		}
		return
	}
	a, ok := v.ipv4(field, x, true)
	if !ok {
		return
	}
	if n.Subnet.IsValid() {
		if msg := checkHostAddr(a, n.Subnet); msg != "" {
			v.errorf(field, "%s", msg)
			return
		}
	}
	n.Gateway = a
}

func (v *validator) endpoint(field string, re *rawEndpoint, ep *Endpoint) {
	ep.Network, _ = v.str(field+".network", re.Network, true)
	ep.Name, _ = v.label(field+".name", re.Name)
	ep.NetNS, _ = v.path(field+".netns", re.NetNS, false)
	if re.NetNS == nil {
		// A host endpoint: served by the daemon's own stack, no TAP.
		ep.IfName = ""
		if re.IfName != nil {
			v.errorf(field+".ifname", "%v", ErrHostEndpointIfName)
		}
	} else {
		ep.IfName = DefaultIfName
	}
	if s, ok := v.str(field+".ifname", re.IfName, false); ok && re.NetNS != nil {
		if msg := checkIfName(s); msg != "" {
			v.errorf(field+".ifname", "%s", msg)
		} else {
			ep.IfName = s
		}
	}
	if re.Address != nil {
		ep.Address, _ = v.ipv4(field+".address", re.Address, false)
	}
	if s, ok := v.str(field+".mac", re.MAC, false); ok {
		if mac, err := ParseMAC(s); err != nil {
			v.errorf(field+".mac", "%v", err)
		} else {
			ep.MAC = mac
		}
	}
	v.aliases(field+".aliases", re.Aliases, ep)
}

// aliases sets ep.Aliases, leaving out entries that fail their check. It
// needs ep.Name to be set.
func (v *validator) aliases(field string, x any, ep *Endpoint) {
	elems, ok := v.array(field, x)
	if !ok {
		return
	}
	seen := map[string]int{}
	for i, e := range elems {
		ef := indexPath(field, i)
		s, ok := v.str(ef, e, true)
		if !ok {
			continue
		}
		if msg := checkLabel(s); msg != "" {
			v.errorf(ef, "%s", msg)
			continue
		}
		if j, dup := seen[s]; dup {
			v.errorf(ef, "alias %q is already listed as %s", s, indexPath(field, j))
			continue
		}
		if s == ep.Name {
			v.errorf(ef, "alias %q is the endpoint's name", s)
			continue
		}
		seen[s] = i
		ep.Aliases = append(ep.Aliases, s)
	}
}

// str type-checks a string leaf. It returns ok only for a present string
// (non-empty when required); absence of a required field and an empty
// required string are reported.
func (v *validator) str(field string, x any, required bool) (string, bool) {
	if x == nil {
		if required {
			v.errorf(field, "required key is missing")
		}
		return "", false
	}
	s, isStr := x.(string)
	switch {
	case !isStr:
		v.errorf(field, "expected a string, got %s", describe(x))
	case required && s == "":
		v.errorf(field, "must not be empty")
	case !utf8.ValidString(s) || strings.ContainsFunc(s, isControl):
		v.errorf(field, "%q contains control characters", s)
	default:
		return s, true
	}
	return "", false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// integer type-checks an integer leaf; ok reports a present integer.
func (v *validator) integer(field string, x any, required bool) (int64, bool) {
	if x == nil {
		if required {
			v.errorf(field, "required key is missing")
		}
		return 0, false
	}
	n, isInt := x.(int64)
	if !isInt {
		v.errorf(field, "expected an integer, got %s", describe(x))
		return 0, false
	}
	return n, true
}

// boolean type-checks an optional boolean leaf; ok reports a present one.
func (v *validator) boolean(field string, x any) (bool, bool) {
	if x == nil {
		return false, false
	}
	b, isBool := x.(bool)
	if !isBool {
		v.errorf(field, "expected a boolean (true or false), got %s", describe(x))
		return false, false
	}
	return b, true
}

// array type-checks an optional array leaf; ok reports a present array.
func (v *validator) array(field string, x any) ([]any, bool) {
	if x == nil {
		return nil, false
	}
	a, isArray := x.([]any)
	if !isArray {
		v.errorf(field, "expected an array of strings, got %s", describe(x))
		return nil, false
	}
	return a, true
}

// duration parses an optional non-negative duration leaf, a string in the
// syntax of time.ParseDuration ("12h", "1h30m", "0").
func (v *validator) duration(field string, x any) (time.Duration, bool) {
	if x == nil {
		return 0, false
	}
	s, isStr := x.(string)
	if !isStr {
		v.errorf(field, "expected a duration string such as \"30s\" or \"12h\", got %s", describe(x))
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		v.errorf(field, "%q is not a duration: write a number with a unit (s, m, h), such as \"30s\" or \"12h\"", s)
	case d < 0:
		v.errorf(field, "%s is negative", s)
	default:
		return d, true
	}
	return 0, false
}

func (v *validator) port(field string, x any) (uint16, bool) {
	n, ok := v.integer(field, x, false)
	if !ok {
		return 0, false
	}
	if n < 1 || n > 65535 {
		v.errorf(field, "port %d is out of range 1..65535", n)
		return 0, false
	}
	return uint16(n), true
}

// path type-checks an absolute path leaf.
func (v *validator) path(field string, x any, required bool) (string, bool) {
	s, ok := v.str(field, x, required)
	if !ok {
		return "", false
	}
	if !filepath.IsAbs(s) {
		v.errorf(field, "%q is not an absolute path", s)
		return "", false
	}
	return s, true
}

// ipv4 parses an IPv4 address leaf in dotted-decimal form.
func (v *validator) ipv4(field string, x any, required bool) (netip.Addr, bool) {
	s, ok := v.str(field, x, required)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		v.errorf(field, "%q is not a valid IPv4 address", s)
		return netip.Addr{}, false
	}
	return a, true
}

// underlay parses a required underlay address: a unicast IPv4 address.
// Loopback is allowed so that tests can run a cluster on one machine.
func (v *validator) underlay(field string, x any) (netip.Addr, bool) {
	a, ok := v.ipv4(field, x, true)
	if !ok {
		return netip.Addr{}, false
	}
	switch {
	case a.IsUnspecified():
		v.errorf(field, "%s is unspecified; use the address of an interface", a)
	case a.IsMulticast():
		v.errorf(field, "%s is a multicast address; use a unicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		v.errorf(field, "%s is the broadcast address; use a unicast address", a)
	default:
		return a, true
	}
	return netip.Addr{}, false
}

// label reads a required DNS label (a network, endpoint or service name).
func (v *validator) label(field string, x any) (string, bool) {
	s, ok := v.str(field, x, true)
	if !ok {
		return "", false
	}
	if msg := checkLabel(s); msg != "" {
		v.errorf(field, "%s", msg)
		return "", false
	}
	return s, true
}

// checkLabel returns why s is not a DNS label, or "".
func checkLabel(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > 63 {
		return fmt.Sprintf("%q is longer than 63 bytes (a DNS label)", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Sprintf("%q is not a DNS label: use only a-z, 0-9 and '-'", s)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return fmt.Sprintf("%q is not a DNS label: it must not begin or end with '-'", s)
	}
	return ""
}

// checkIfName returns why s is not a valid Linux interface name, or "". The
// kernel (dev_valid_name) refuses "", ".", "..", names longer than 15 bytes
// and names with '/', ':' or whitespace; non-printable and non-ASCII bytes
// are refused here too, since tools print such names badly.
func checkIfName(s string) string {
	if err := CheckIfName(s); err != nil {
		return err.Error()
	}
	return ""
}

// CheckIfName reports why s cannot name a network interface (the kernel's
// rule: 1 to 15 bytes, no '/', ':', spaces or non-printable bytes, not "."
// or ".."), or nil. The daemon applies it to interface names that arrive
// through the API, not only to the config file's.
func CheckIfName(s string) error {
	switch {
	case s == "" || s == "." || s == "..":
		return fmt.Errorf("%q is not a valid interface name", s)
	case len(s) > MaxIfNameLen:
		return fmt.Errorf("%q is %d bytes long; interface names are limited to %d", s, len(s), MaxIfNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return fmt.Errorf("%q is not a valid interface name: '/', ':', spaces and non-printable characters are not allowed", s)
		}
	}
	return nil
}

// checkWGName returns why s cannot name the WireGuard interface, or "":
// an interface name of the narrower character set wg(8) accepts.
func checkWGName(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Sprintf("%q is not a valid interface name: use only A-Z, a-z, 0-9, '_', '.' and '-'", s)
		}
	}
	return checkIfName(s)
}

// checkHostAddr returns why a cannot be a host address in p, or "".
func checkHostAddr(a netip.Addr, p netip.Prefix) string {
	switch {
	case !p.Contains(a):
		return fmt.Sprintf("%s is outside subnet %s", a, p)
	case a == p.Addr():
		return fmt.Sprintf("%s is the network address of subnet %s", a, p)
	case a == ipv4.Broadcast(p):
		return fmt.Sprintf("%s is the broadcast address of subnet %s", a, p)
	}
	return ""
}

// describe names the TOML type and value of a decoded leaf for messages.
func describe(x any) string {
	switch x := x.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("float %v", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return fmt.Sprintf("date/time %v", x)
	}
}
