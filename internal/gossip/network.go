package gossip

import "github.com/vxwire/vxwire/internal/config"

// Network definitions created through the API are kept in the daemon's
// Raft log, not here. Hosts of earlier versions replicated them by
// gossip: networks messages (msgNets) and the network entries of sync.
// The codec still decodes them, so that a cluster upgraded host by host
// does not count them as malformed, and the delegate drops the entries.

// Limits of the network entries of earlier versions.
const (
	// maxVNI is the largest 24-bit VXLAN network identifier the wire
	// format carries.
	maxVNI = config.MaxVNI
	// maxMTU is the largest MTU the wire format carries.
	maxMTU = 65535
)

// netVersion ordered the writes of network definitions in earlier
// versions: a Lamport clock, then the name of the host that wrote.
type netVersion struct {
	Clock  uint64
	Origin string
}

// netEntry is one network name's entry of earlier versions: a definition
// or a tombstone (Deleted, with only Def.Name set).
type netEntry struct {
	Def     config.Network // as earlier versions gossiped it
	Version netVersion
	Created netVersion
	Deleted bool
}
