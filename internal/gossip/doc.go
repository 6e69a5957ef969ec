// Package gossip replicates endpoint records (network, name, aliases, IP,
// MAC, owner host) to every host of the overlay over hashicorp/memberlist,
// as Docker's NetworkDB does. It does not decide who may use an address,
// nor which networks the API created: that is the Raft log's job
// (internal/consensus), since decisions by whichever members are visible
// cannot be safe across a partition.
//
// # Trust
//
// With Config.Secret every packet and stream is encrypted and verified;
// the daemon always sets it when it has peers. With Config.Peers a gate in
// front of memberlist's transport drops packets and connections from other
// addresses (RefusedStranger); SetPeers moves it on reload. Every state
// and record received is checked with the rules of
// internal/config, a notice of a change only for a host that is known or
// a member, versions and clocks may neither lie more than ten
// minutes in the future nor come near wrapping, and the table holds at
// most MaxHosts hosts of at most MaxRecordsPerHost records each. Each
// refusal is counted by reason (Cluster.Refused). States also carry the
// host's config-file networks (HostNetworks), so that the daemon can check
// an API network against every host's.
//
// # Record replication
//
// Each host announces its whole record set with a version (start time of
// the daemon in nanoseconds, change counter). Receivers keep the highest
// version per host, so a restarted daemon outranks its previous life even
// though its counter starts again; if a previous life's clock was ahead, the
// new daemon sees its old state come back from a peer and moves its epoch
// past it. Sets travel three ways: whole in every memberlist push/pull
// (anti-entropy, TCP, up to memberlist's 20 MB state limit, about 200 000
// records); as a UDP gossip broadcast on change when the encoded set fits
// in 1 KiB; and otherwise as a small "changed, pull me" notice that is
// gossiped like a broadcast, after which each receiver fetches the set from
// its owner over TCP. The notice was preferred over splitting a big set
// into chunks because a set is only meaningful whole (removals are implicit)
// and a fetch needs no reassembly state.
//
// A host that leaves (Close) has its records removed by every peer as soon
// as its leave message arrives. A host that fails is declared dead by
// memberlist's probe and suspicion protocol, whose timings are derived
// from Config.DeadAfter so that detection fits in it (see timings); its
// records are removed then. Its version is kept, so stale copies of its
// records still circulating are not taken back, while a newer state (a
// restart) or the same state from a host that was wrongly declared dead and
// refuted it is. As a last line of defence, states of hosts that are not
// members for a third of DeadAfter are dropped.
//
// # Network definitions
//
// Network definitions created through the API are not gossiped: the
// daemon keeps them in its Raft log (internal/consensus), where a majority
// of the hosts commits each create and removal and a clashing definition
// is refused. Gossip carries what the log needs no quorum for: endpoint
// records, and each host's config-file networks (HostNetworks), against
// which the daemon checks an API network before proposing it. Hosts of
// earlier versions gossiped definitions (networks messages and the network
// entries of push/pull); they are decoded and dropped.
//
// Push/pull carries records in a message type (sync) that hosts of
// earlier versions of this package do not know: they drop it, and while a
// cluster mixes versions, records reach old hosts by gossip and pull only.
//
// # Address claims of earlier versions
//
// Earlier versions arbitrated addresses with claim, answer and release
// messages and announced reservations in the host state. The codec still
// decodes them, so that a cluster can be upgraded host by host, but claim
// messages are dropped, and reservations announced by old hosts only serve
// Lookup, like records.
package gossip
