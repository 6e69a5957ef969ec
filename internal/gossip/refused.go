package gossip

// Reasons gossip input is refused, counted by Cluster.Refused.
const (
	// RefusedMalformed: a message that does not decode.
	RefusedMalformed = "gossip_malformed"
	// RefusedStranger: a packet or connection from an address that is not
	// a configured peer.
	RefusedStranger = "gossip_stranger"
	// RefusedUnauthenticated: a packet or stream that failed decryption
	// with the cluster secret, or came unencrypted.
	RefusedUnauthenticated = "gossip_unauthenticated"
	// RefusedRecord: an endpoint record that fails the config rules.
	RefusedRecord = "gossip_record_invalid"
	// RefusedNetwork: a network definition that fails the config rules.
	RefusedNetwork = "gossip_network_invalid"
	// RefusedHost: a state whose host name fails the config rules.
	RefusedHost = "gossip_host_invalid"
	// RefusedVersion: a version or clock that would wrap around or lies
	// too far in the future.
	RefusedVersion = "gossip_version"
	// RefusedHostCap: a state of a new host beyond MaxHosts.
	RefusedHostCap = "gossip_host_table_full"
	// RefusedUnknownHost: a "changed, pull me" notice about a host that
	// is neither in the table nor a member, which could not be pulled.
	RefusedUnknownHost = "gossip_unknown_host"
	// RefusedRecordCap: a state with more than MaxRecordsPerHost records.
	RefusedRecordCap = "gossip_too_many_records"
)

// Refused returns how much gossip input this host refused, by reason
// (the Refused* constants). The map is a copy; nil when nothing was.
func (c *Cluster) Refused() map[string]uint64 { return c.refused.Snapshot() }
