package gossip

import "net/netip"

// Network definitions created through the API are kept in the daemon's
// Raft log, not here. Hosts of earlier versions replicated them by
// gossip: networks messages (msgNets) and the network entries of sync.
// The codec still decodes them, so that a cluster upgraded host by host
// does not count them as malformed, and the delegate drops the entries.

// Limits of the network entries of earlier versions.
const (
	// maxVNI is the largest 24-bit VXLAN network identifier the wire
	// format carries.
	maxVNI = 1<<24 - 1
	// maxMTU is the largest MTU the wire format carries.
	maxMTU = 65535
)

// networkDef is a network definition as earlier versions gossiped it.
type networkDef struct {
	Name      string
	VNI       uint32
	Subnet    netip.Prefix
	Gateway   netip.Addr
	MTU       int
	Encrypted bool
	Egress    bool
}

// netVersion ordered the writes of network definitions in earlier
// versions: a Lamport clock, then the name of the host that wrote.
type netVersion struct {
	Clock  uint64
	Origin string
}

// netEntry is one network name's entry of earlier versions: a definition
// or a tombstone (Deleted, with only Def.Name set).
type netEntry struct {
	Def     networkDef
	Version netVersion
	Created netVersion
	Deleted bool
}
