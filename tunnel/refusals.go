package tunnel

// Reasons the control plane refuses input, counted in refusals. They are
// part of the status API (api.Status.Refused).
const (
	// refusedUnkeyed: an encrypted network replicated to a host without a
	// WireGuard key, which therefore does not carry it.
	refusedUnkeyed = "network_no_private_key"
	// refusedFileClash: an API network whose name, VNI or subnet is one
	// of this host's config file; the file wins.
	refusedFileClash = "network_clashes_with_config"
	// refusedApply: a network definition that could not be applied.
	refusedApply = "network_apply_failed"
	// refusedRecord: a record from gossip whose address does not fit its
	// network here (outside the subnet, the gateway, network or broadcast
	// address).
	refusedRecord = "record_outside_network"
	// refusedRelay*: connections to the published-port relay refused:
	// not from a peer, without a valid header, naming a target no ingress
	// publish of that port forwards to, whose target could not be
	// reached, or beyond the relay's bound of open connections.
	refusedRelayPeer        = "relay_not_peer"
	refusedRelayHeader      = "relay_bad_header"
	refusedRelayTarget      = "relay_target_not_published"
	refusedRelayUnreachable = "relay_target_unreachable"
	refusedRelayBusy        = "relay_busy"
	// refusedKeptTAP: a kept TAP of a rootless container that a
	// restarted daemon found in another namespace, under another link, or
	// in a namespace the user does not own (see persist.go).
	refusedKeptTAP = "kept_tap_refused"
)
