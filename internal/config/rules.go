package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vxwire/vxwire/internal/overhead"
)

// The rules below are the one home of what a network, an endpoint and a
// host name may be. Every door calls them: the config file (through the
// validator, which adds FILE:LINE), the API, the CLI, the API fake and
// every definition and record received from gossip. Their messages read
// as the tail of a config error ("network[0].vni: vni 7 is out of range
// 256..16777215").

// MaxHostNameLen bounds host names: the longest string gossip carries.
const MaxHostNameLen = 255

// CheckLabel reports why s is not a DNS label (a network, endpoint or
// alias name: a-z, 0-9 and '-', 1 to 63 bytes, no '-' at either end).
func CheckLabel(s string) error {
	if msg := checkLabel(s); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// CheckHostName reports why s cannot name a host: it must have 1 to
// MaxHostNameLen bytes of UTF-8 without control characters.
func CheckHostName(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxHostNameLen:
		return fmt.Errorf("%.20q... is %d bytes long; host names are limited to %d", s, len(s), MaxHostNameLen)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, isControl):
		return fmt.Errorf("%q contains control characters", s)
	}
	return nil
}

// CheckVNI reports why v cannot be a network's VNI.
func CheckVNI(v int64) error {
	if v < MinVNI || v > MaxVNI {
		return fmt.Errorf("vni %d is out of range %d..%d", v, MinVNI, MaxVNI)
	}
	return nil
}

// ParseSubnet parses a network's subnet: an IPv4 prefix of at most /30
// without host bits.
func ParseSubnet(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not a valid IPv4 prefix (want a.b.c.d/n)", s)
	}
	if err := CheckSubnet(p); err != nil {
		return netip.Prefix{}, err
	}
	return p, nil
}

// CheckSubnet reports why p cannot be a network's subnet.
func CheckSubnet(p netip.Prefix) error {
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return fmt.Errorf("%s is not a valid IPv4 prefix (want a.b.c.d/n)", p)
	case p.Bits() > 30:
		return fmt.Errorf("%s is too small: the prefix length must be at most 30", p)
	case p.Masked() != p:
		return fmt.Errorf("%s has host bits set; use %s", p, p.Masked())
	}
	return nil
}

// CheckGateway reports why a cannot be the gateway of subnet p.
func CheckGateway(a netip.Addr, p netip.Prefix) error {
	if !a.Is4() {
		return fmt.Errorf("%s is not a valid IPv4 address", a)
	}
	if msg := checkHostAddr(a, p); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// CheckNetworkMTU reports why m cannot be a network's MTU; 0 means the
// underlay MTU minus the overhead.
func CheckNetworkMTU(m int64, encrypted bool) error {
	if m != 0 && (m < MinMTU || m > MaxNetworkMTU) {
		return fmt.Errorf("mtu %d is out of range: use 0 (underlay MTU - %d) or %d..%d", m, Overhead(encrypted), MinMTU, MaxNetworkMTU)
	}
	return nil
}

// Overhead is what the overlay adds to a container frame on the underlay:
// VXLAN (50) and, for an encrypted network, the inner headers and
// WireGuard (110 in all). The arithmetic lives in package overhead.
func Overhead(encrypted bool) int { return overhead.Of(encrypted) }

// CheckNetwork reports why n, as built by any door, is not a valid network:
// name, VNI, subnet, gateway (which must be set) and MTU. The error names
// the field.
func CheckNetwork(n *Network) error {
	if err := CheckLabel(n.Name); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if err := CheckVNI(int64(n.VNI)); err != nil {
		return fmt.Errorf("network %s: vni: %w", n.Name, err)
	}
	if err := CheckSubnet(n.Subnet); err != nil {
		return fmt.Errorf("network %s: subnet: %w", n.Name, err)
	}
	if err := CheckGateway(n.Gateway, n.Subnet); err != nil {
		return fmt.Errorf("network %s: gateway: %w", n.Name, err)
	}
	if err := CheckNetworkMTU(int64(n.MTU), n.Encrypted); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// CheckEndpointAddr reports why a cannot be an endpoint's address in n:
// it must be a host address of the subnet other than the gateway.
func CheckEndpointAddr(a netip.Addr, n *Network) error {
	if !a.Is4() {
		return fmt.Errorf("%s is not a valid IPv4 address", a)
	}
	if msg := checkHostAddr(a, n.Subnet); msg != "" {
		return fmt.Errorf("%s of network %s", msg, n.Name)
	}
	if a == n.Gateway {
		return fmt.Errorf("%s is the gateway of network %s", a, n.Name)
	}
	return nil
}

// CheckMAC reports why hw cannot be an endpoint's MAC address: it must be
// a 48-bit unicast address other than all zeros.
func CheckMAC(hw net.HardwareAddr) error {
	switch {
	case len(hw) != 6:
		return fmt.Errorf("%s is not a 48-bit Ethernet MAC address", hw)
	case hw[0]&1 != 0:
		return fmt.Errorf("%s is a multicast address; the lowest bit of the first octet must be 0", hw)
	case [6]byte(hw) == [6]byte{}:
		return fmt.Errorf("%s is the all-zero address", hw)
	}
	return nil
}

// ParseMAC parses an endpoint's MAC address and checks it with CheckMAC.
func ParseMAC(s string) (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid MAC address", s)
	}
	if err := CheckMAC(hw); err != nil {
		return nil, err
	}
	return hw, nil
}

// CheckAliases reports why aliases cannot be the DNS aliases of endpoint
// name: each a DNS label, none repeated, none the name itself.
func CheckAliases(name string, aliases []string) error {
	for i, a := range aliases {
		if err := CheckLabel(a); err != nil {
			return fmt.Errorf("alias: %w", err)
		}
		if a == name {
			return fmt.Errorf("alias %q is the endpoint's name", a)
		}
		for _, b := range aliases[:i] {
			if a == b {
				return fmt.Errorf("alias %q is listed twice", a)
			}
		}
	}
	return nil
}

// CheckRecord reports why an endpoint record (as gossip replicates it)
// is invalid: name and aliases DNS labels, a unicast MAC, and, when n is
// not nil, an address that can be an endpoint's in n.
func CheckRecord(n *Network, name string, aliases []string, ip netip.Addr, mac net.HardwareAddr) error {
	if err := CheckLabel(name); err != nil {
		return fmt.Errorf("endpoint name: %w", err)
	}
	if err := CheckAliases(name, aliases); err != nil {
		return fmt.Errorf("endpoint %s: %w", name, err)
	}
	if err := CheckMAC(mac); err != nil {
		return fmt.Errorf("endpoint %s: mac: %w", name, err)
	}
	if !ip.Is4() {
		return fmt.Errorf("endpoint %s: %s is not a valid IPv4 address", name, ip)
	}
	if n != nil {
		if err := CheckEndpointAddr(ip, n); err != nil {
			return fmt.Errorf("endpoint %s: %w", name, err)
		}
	}
	return nil
}

// NameHolder is an endpoint name held on a network by a host: in the
// replicated log's claims, or in another host's gossip record.
type NameHolder struct {
	// Network and Name are what is held; Host holds it.
	Network, Name, Host string
}

// NameHeldError reports a claim of a name that another host's endpoint
// holds. It names the holder, which makes the API answer with a conflict.
type NameHeldError struct {
	// Held is the holding the claim ran into.
	Held NameHolder
}

// Error implements error.
func (e *NameHeldError) Error() string {
	return fmt.Sprintf("name %q on network %q is held by host %s; names are unique in a network across the cluster (aliases may be shared)",
		e.Held.Name, e.Held.Network, e.Held.Host)
}

// Holder returns the endpoint and host that hold the name.
func (e *NameHeldError) Holder() (endpoint, host string) { return e.Held.Name, e.Held.Host }

// SameName reports whether two endpoint names are one name: names compare
// as DNS compares them, ignoring case.
func SameName(a, b string) bool { return strings.EqualFold(a, b) }

// CheckNameClaim reports why claim may not take its name while held holds
// one: a name is unique within its network across the cluster, so a
// holding of the same name on the same network by another host refuses
// the claim (as a *NameHeldError). A host's own holding never does: it
// claims its names again after a restart, and this host's endpoints are
// kept apart by their own key. Aliases are shared (DNS answers them round
// robin) and are never claimed, so they never reach this rule.
func CheckNameClaim(claim, held NameHolder) error {
	if held.Network == claim.Network && SameName(held.Name, claim.Name) && held.Host != claim.Host {
		return &NameHeldError{Held: held}
	}
	return nil
}

// ErrHostEndpointIfName is the rule that a host endpoint (an endpoint
// without netns) names no interface: the daemon's own stack serves it.
var ErrHostEndpointIfName = errors.New("a host endpoint (no netns) has no interface; leave ifname out, or set netns")

// CheckLoopbackListen reports why ap cannot be a local listener of the
// laptop doors (host.socks, a forward's listen, an expose's to): a
// loopback IPv4 address and a port other than 0. A proxy that listened on
// another address would hand the overlay to anyone who can reach it.
func CheckLoopbackListen(ap netip.AddrPort) error {
	switch {
	case !ap.Addr().Is4() || !ap.Addr().IsLoopback():
		return fmt.Errorf("%s is not a loopback IPv4 address and port, such as 127.0.0.1:1080; only this host may use it", ap)
	case ap.Port() == 0:
		return fmt.Errorf("%s has port 0; choose a port", ap)
	}
	return nil
}

// MinUnprivilegedPort is the lowest port a process without
// CAP_NET_BIND_SERVICE may bind (Linux's default
// net.ipv4.ip_unprivileged_port_start).
const MinUnprivilegedPort = 1024

// CheckRootlessPort reports why a daemon in rootless mode cannot bind
// port p: ports below MinUnprivilegedPort need CAP_NET_BIND_SERVICE.
func CheckRootlessPort(p uint16) error {
	if p != 0 && p < MinUnprivilegedPort {
		return fmt.Errorf("port %d is privileged: rootless mode cannot bind ports below %d (that needs CAP_NET_BIND_SERVICE); choose a port from %d up",
			p, MinUnprivilegedPort, MinUnprivilegedPort)
	}
	return nil
}

// ParseLoopback parses "IP:PORT" and checks it with CheckLoopbackListen.
func ParseLoopback(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not IP:PORT, such as 127.0.0.1:8080", s)
	}
	if err := CheckLoopbackListen(ap); err != nil {
		return netip.AddrPort{}, err
	}
	return ap, nil
}

// ParseOverlayTarget parses a forward's destination, "NAME:PORT" or
// "IPV4:PORT", where NAME is an endpoint name or alias of the forward's
// network (a DNS label), and a port 1..65535.
func ParseOverlayTarget(s string) (host string, port uint16, err error) {
	return parseTarget(s, true)
}

// parseTarget parses "NAME:PORT", or also "IPV4:PORT" when ipOK: a DNS
// label or an IPv4 address, and a port 1..65535.
func parseTarget(s string, ipOK bool) (host string, port uint16, err error) {
	form := "NAME:PORT"
	if ipOK {
		form = "NAME:PORT or IPV4:PORT"
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", 0, fmt.Errorf("%q is not %s", s, form)
	}
	host = s[:i]
	if port, err = ParsePort(s[i+1:]); err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	if a, aerr := netip.ParseAddr(host); aerr == nil && ipOK {
		if !a.Is4() {
			return "", 0, fmt.Errorf("%q: %s is not an IPv4 address", s, a)
		}
		return host, port, nil
	}
	if err := CheckLabel(host); err != nil {
		return "", 0, fmt.Errorf("%q: name: %w", s, err)
	}
	return host, port, nil
}

// ParsePort parses a port number written as text (a target's, a
// command line's): decimal, 1..65535.
func ParsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q is not 1..65535", s)
	}
	return uint16(n), nil
}

// CheckProto reports why p is not the protocol of a forward, an expose
// or a publish.
func CheckProto(p string) error {
	if p != ProtoTCP && p != ProtoUDP {
		return fmt.Errorf("proto %q is neither %q nor %q", p, ProtoTCP, ProtoUDP)
	}
	return nil
}

// Published ports (see Publish).

// ParsePublishTarget parses "NAME:PORT", the to key of a publish: the
// destination of a forward (ParseOverlayTarget) without the IPv4 form.
func ParsePublishTarget(s string) (name string, port uint16, err error) {
	return parseTarget(s, false)
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
// The config file checks the same fields one by one (publish.go).
func CheckPublish(p *Publish) error {
	if msg := checkLabel(p.Network); msg != "" {
		return fmt.Errorf("network %q: %s", p.Network, msg)
	}
	if p.Port == 0 {
		return errors.New("port must be 1..65535")
	}
	if err := CheckProto(p.Proto); err != nil {
		return err
	}
	if msg := checkLabel(p.Target); msg != "" {
		return fmt.Errorf("to: name %q: %s", p.Target, msg)
	}
	if p.TargetPort == 0 {
		return errors.New("to: port must be 1..65535")
	}
	if err := CheckPublishMode(p.Mode); err != nil {
		return err
	}
	return CheckPublishListen(p.Listen)
}

// CheckPublishMode reports why m is not a publish's mode.
func CheckPublishMode(m string) error {
	if m != ModeIngress && m != ModeHost {
		return fmt.Errorf("mode %q is neither %q nor %q", m, ModeIngress, ModeHost)
	}
	return nil
}

// CheckPublishListen reports why a cannot be a publish's listen address:
// the zero Addr (the host's underlay address) or a unicast IPv4 address.
func CheckPublishListen(a netip.Addr) error {
	if a.IsValid() && (!a.Is4() || a.IsMulticast()) {
		return fmt.Errorf("listen %s is not a unicast IPv4 address", a)
	}
	return nil
}

// MaxKeepalive is the longest persistent keepalive WireGuard accepts
// (a 16-bit number of seconds).
const MaxKeepalive = 65535 * time.Second

// CheckKeepalive reports why d cannot be a peer's WireGuard persistent
// keepalive: whole seconds from 1s to MaxKeepalive, or 0 for none.
func CheckKeepalive(d time.Duration) error {
	if d < 0 || d > MaxKeepalive || d%time.Second != 0 || d > 0 && d < time.Second {
		return fmt.Errorf("%v: must be whole seconds from 1s to %v, or 0 for none", d, MaxKeepalive)
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
	return CheckNetworkNamed(p.Network, nets)
}

// CheckNetworkNamed reports why nothing that lives in the network named
// name (a publish, a service, a forward, an expose) can: no network of
// nets has that name.
func CheckNetworkNamed(name string, nets []Network) error {
	if slices.ContainsFunc(nets, func(n Network) bool { return n.Name == name }) {
		return nil
	}
	return fmt.Errorf("no network is named %q", name)
}

// Services (see Service).

// CheckService reports why s cannot be a service.
func CheckService(s *Service) error {
	if msg := checkLabel(s.Network); msg != "" {
		return fmt.Errorf("network %q: %s", s.Network, msg)
	}
	if msg := checkLabel(s.Name); msg != "" {
		return fmt.Errorf("name %q: %s", s.Name, msg)
	}
	return nil
}

// ServiceClash reports why s cannot be declared beside o: one name of
// one network is one service.
func ServiceClash(s, o *Service) error {
	if s.Network == o.Network && s.Name == o.Name {
		return fmt.Errorf("service %q of network %s is already declared", s.Name, s.Network)
	}
	return nil
}

// CheckServiceVIP reports why a cannot be the virtual IP of a service of
// network n: like an endpoint's address, a host address of the subnet
// other than the gateway. With n nil (the replicated log, which does not
// know every host's config-file networks) only what holds in any network
// is checked: a unicast IPv4 address.
func CheckServiceVIP(a netip.Addr, n *Network) error {
	if n != nil {
		return CheckEndpointAddr(a, n)
	}
	if !a.Is4() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("%s is not a unicast IPv4 address", a)
	}
	return nil
}

// CheckServiceNetwork reports why s cannot live in the network named
// s.Network among nets.
func CheckServiceNetwork(s *Service, nets []Network) error {
	return CheckNetworkNamed(s.Network, nets)
}

// HasTAP reports whether a daemon built for goos (runtime.GOOS) can serve
// container endpoints: TAP devices in network namespaces exist only on
// Linux.
func HasTAP(goos string) bool { return goos == "linux" }

// CheckContainerEndpointOS reports why a container endpoint (a TAP in a
// network namespace, or one handed off) cannot be served on goos: what
// works on a laptop without Linux is a host endpoint, SOCKS5 and
// [[forward]].
func CheckContainerEndpointOS(goos string) error {
	if HasTAP(goos) {
		return nil
	}
	return fmt.Errorf("container endpoints (TAP in a network namespace) need Linux; on %s, use a host endpoint, SOCKS5 or [[forward]]", goos)
}

// CheckDockerPluginOS reports why the Docker plugin cannot be served on
// goos: it creates TAPs for a Linux dockerd's containers.
func CheckDockerPluginOS(goos string) error {
	if HasTAP(goos) {
		return nil
	}
	return fmt.Errorf("the Docker plugin makes TAPs in containers' network namespaces, which need Linux, not %s; remove the key", goos)
}

// CheckAPIGroupOS reports why host.api_group cannot be served on goos:
// Windows has no unix groups and no peer credentials on unix sockets, so
// the daemon restricts its API socket to its own user by the file's ACL.
func CheckAPIGroupOS(goos string) error {
	if goos != "windows" {
		return nil
	}
	return errors.New("windows has no groups for unix sockets: the API socket admits only the daemon's own user; remove the key")
}

// CheckPlainPeers reports why a network that is not encrypted cannot run
// among peers: plain VXLAN needs the underlay address of every host both
// ways, and a roaming peer (one without an address, behind NAT) has none.
// Nor can a host behind NAT, whose peers do not know its address. Every
// door that defines a network calls it with the host's setting and peers.
func CheckPlainPeers(encrypted, behindNAT bool, peers []Peer) error {
	if encrypted {
		return nil
	}
	if behindNAT {
		return errors.New("this host is behind NAT: a network that is not encrypted needs addresses both ways (set encrypted = true)")
	}
	for _, p := range peers {
		if p.Roaming() {
			return fmt.Errorf("peer %s has no address: a network that is not encrypted needs addresses both ways (set encrypted = true, or the peer's address)", p.Name)
		}
	}
	return nil
}
