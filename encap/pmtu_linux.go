package encap

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Path MTU on the underlay.
//
// The underlay sockets keep the kernel's path MTU discovery on
// (IP_PMTUDISC_WANT, set by Listen): every datagram that fits the known
// path MTU leaves with DF set, a router on the way that cannot forward it
// answers with ICMP "fragmentation needed", and the kernel records the
// smaller MTU for that destination (a route exception, shared by every
// socket that sends there: the VXLAN sockets and WireGuard's). A datagram
// still larger than that is fragmented by the kernel rather than refused,
// so a container's packet without DF is never lost to the path; packets
// with DF are kept from that point by the switch, which answers them with
// ICMP itself (tunnel/switch_mtu.go).
//
// PathMTU reads the recorded value back. IP_MTU is only defined for a
// connected socket and reads the route the socket holds, so every call
// connects a fresh socket, which looks the route (and its exception) up
// again. It sends nothing.

// PathMTU returns the kernel's current path MTU to remote: the MTU of the
// route to it, lowered by what ICMP "fragmentation needed" taught the
// kernel. It costs three system calls and is meant for a periodic check
// outside the data path.
func PathMTU(remote netip.AddrPort) (int, error) {
	a := remote.Addr().Unmap()
	if !a.Is4() {
		return 0, ErrNotIPv4
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("cannot open path mtu socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: a.As4(), Port: int(remote.Port())}); err != nil {
		return 0, fmt.Errorf("cannot route to %s: %w", remote, err)
	}
	mtu, err := unix.GetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU)
	if err != nil {
		return 0, fmt.Errorf("cannot read path mtu to %s: %w", remote, err)
	}
	return mtu, nil
}

// setPMTUDiscovery turns path MTU discovery on for fd whatever the
// host's net.ipv4.ip_no_pmtu_disc says (see PathMTU). Failure leaves the
// kernel's default, which is the same unless that sysctl is set.
func setPMTUDiscovery(fd int) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_WANT)
}
