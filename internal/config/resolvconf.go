package config

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// ParseResolvConf returns the DNS servers named by the nameserver lines of
// a resolv.conf file, in file order, each once, on port 53. Lines that are
// malformed or name an unusable address (unspecified, multicast) are
// skipped, as the C library skips them.
//
// Loopback servers (127.0.0.0/8, ::1) are skipped too. They are local stub
// resolvers, such as systemd-resolved on 127.0.0.53 or a dnsmasq on
// 127.0.0.1, that listen only in the host's own network namespace: a
// container asking through its gateway would reach its own loopback, and
// the stub's own upstreams are the servers to forward to. systemd-resolved
// lists those in /run/systemd/resolve/resolv.conf, which Load reads when
// /etc/resolv.conf names only loopback servers.
func ParseResolvConf(data []byte) []netip.AddrPort {
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !validZone(a.Zone()) || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() ||
			a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			continue
		}
		ap := netip.AddrPortFrom(a, DefaultDNSPort)
		if !seen[ap] {
			seen[ap] = true
			out = append(out, ap)
		}
	}
	return out
}
