// Package crypto is vxwire's encrypted path: VXLAN over WireGuard.
//
// For an encrypted network each VXLAN datagram to a peer host is carried in
// an inner IPv4/UDP packet from this host's tunnel address to the peer's
// (both ports 4789) through an embedded wireguard-go device. The device
// reads and writes those inner packets through an in-memory tun.Device (no
// kernel TUN is created) and sends the encrypted result with wireguard-go's
// own batched UDP socket on wg_port. Every peer's allowed-ips is its tunnel
// address /32, so WireGuard's cryptokey routing rejects an inner packet
// whose source is not the tunnel address of the peer that sent it; a
// received datagram is therefore authenticated as coming from the peer
// Read names. The formats are standard end to end: a host running stock
// WireGuard with a kernel VXLAN device bound to its wg interface (local =
// its tunnel address) interoperates.
//
// The package holds the host keys (Key, GenerateKey, ParseKey, compatible
// with wg genkey and wg pubkey), the preshared-key Ring that rotates a
// per-pair key derived from the cluster secret, the Device that implements
// encap.Conn, and the UAPI socket through which `wg show` reads the device.
// It is the only importer of wireguard-go; no wireguard-go type appears in
// its API.
package crypto
