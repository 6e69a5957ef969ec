// Package gossip replicates endpoint records (network, name, aliases, IP,
// MAC, owner host) to every host of the overlay over hashicorp/memberlist,
// as Docker's NetworkDB does, replicates network definitions created
// through the API, as Docker's swarm-scoped networks. It does not decide
// who may use an address: that is the address-block log's job
// (internal/consensus), since grants by whichever members are visible
// cannot be safe across a partition.
//
// # Trust
//
// With Config.Secret every packet and stream is encrypted and verified;
// the daemon always sets it when it has peers. With Config.Peers a gate in
// front of memberlist's transport drops packets and connections from other
// addresses (RefusedStranger); SetPeers moves it on reload. Every state,
// record and network definition received is checked with the rules of
// internal/config, versions and clocks may neither lie more than ten
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
// A network definition (NetworkDef) belongs to the cluster, not to the host
// that wrote it: every host keeps one entry per network name, a definition
// or a tombstone, whatever becomes of the writer, so a definition survives
// its creator leaving or failing. Each write (PutNetwork, DeleteNetwork)
// carries a version (clock, writer's host name) whose clock is one more
// than any clock the writer has seen (a Lamport clock), and every host keeps
// the entry with the highest version per name: last writer wins. Two hosts
// that write the same name at once each write a version the other has not
// seen; the higher one wins on every host: the higher clock, or with equal
// clocks (the usual case when both knew the same writes) the host name
// that sorts last. The other host's daemon sees its definition replaced.
// (Should a host reuse a
// version, e.g. after losing its state, a tombstone orders after a
// definition and then the encoded forms are compared, so the order stays
// total.) A delete writes a tombstone that outranks every write its host
// had seen, so a stale definition gossiped late, or brought back by a host
// that was down, does not come back to life. Tombstones are kept
// indefinitely, up to 4096; beyond that the oldest by version are forgotten
// (an eighth at a time), so only a host that missed a delete and more than
// about 3500 later deletes could bring a definition back. Creating a
// deleted name again writes a newer version that replaces its tombstone.
//
// Each write is gossiped by UDP as a single entry (well under the broadcast
// limit), and every push/pull carries all entries, tombstones included, so
// a host that joins later learns them and missed broadcasts are repaired.
// Persisting the set is the daemon's job: it saves NetworkState in its
// state directory and hands it to LoadNetworkState after a restart, which
// merges it like a peer's push/pull and restores the clock, so a host that
// restarts alone still knows its networks and one that missed changes
// while it was down is corrected by newer versions once it joins.
//
// PutNetwork refuses a definition whose VNI equals, or whose subnet
// overlaps, that of a visible definition of another name. That is best
// effort: two hosts may create clashing definitions under different names
// at once. Every host then shows only the definition created first, ordered
// by the version of the write that created it (updates keep it, so updating
// a network does not change which one wins), and hides the other, with a
// warning in the log, until the first is deleted. Networks therefore never
// lists two definitions sharing a VNI or overlapping subnets, and all hosts
// agree on the list once they have the same entries. Networks of the
// configuration file are not known here; the daemon checks those.
//
// Push/pull carries records and networks in one message type that hosts of
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
