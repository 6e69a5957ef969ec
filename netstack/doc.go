// Package netstack is the only importer of gVisor in vxwire. It gives each
// overlay network a userspace gateway: a gVisor TCP/IP stack with one
// Ethernet NIC that the network's switch treats as just another port.
//
// The gateway's method set (Wait, Read, Write, BatchSize, MTU, Close) is the
// switch's port interface, satisfied structurally, so frames move between
// the switch and the stack in batches without any gVisor type crossing the
// package boundary:
//
//	switch port                 Gateway                       gVisor stack
//	───────────                 ───────                       ────────────
//	Write(frames) ─▶ filter ─▶ copy into PacketBuffer ─▶ ethernet ─▶ ARP / IPv4
//	                                                                   │
//	Read(bufs)   ◀─ ARP fix-up ◀─ copy out ◀─ queue (2048) ◀─ ethernet ◀┘
//	Wait()       ◀─ wake-up channel (holds no buffers)
//
// The stack owns the gateway address: it answers ARP for it and ICMP echo,
// and serves whatever the daemon listens on with ListenUDP and ListenTCP
// (DNS on port 53). IPv4 only; IPv6 frames are dropped and counted.
//
// With egress enabled the gateway is also the network's NAT: TCP and UDP
// connections from containers to addresses outside the subnet are
// terminated in the stack and re-originated from the daemon's own network
// namespace through host sockets opened with GatewayConfig.Dial. ICMP to
// outside addresses is not forwarded: the gateway drops it, so ping to the internet from a
// container fails even when TCP and UDP egress work. Destinations an
// EgressPolicy (policy.go) or the built-in classes refuse get a RST or an
// ICMP port unreachable at once, and flows are capped per container.
package netstack
