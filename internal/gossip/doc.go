// Package gossip replicates endpoint records (network, name, aliases, IP,
// MAC, owner host) to every host of the overlay over hashicorp/memberlist,
// as Docker's NetworkDB does, and arbitrates overlay-wide address claims
// for IPAM.
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
// # Address uniqueness
//
// An address (network, IP) is claimed before it is used: the claimant
// first grants the claim to itself, then sends it by TCP to every member it
// sees alive or suspect and succeeds only if all of them grant it before a
// deadline. A member grants an address to at most one host at a time: it
// refuses if it knows a record or reservation of the address by another
// host, or an unexpired promise to another host; otherwise it promises the
// address to the claimant for PromiseTTL. On success the claimant adds a
// reservation to its announced state, which keeps refusing other claimants
// for as long as it lives; on failure it withdraws its grants so that a
// competitor need not wait. Two hosts claiming at once each hold their own
// promise, so each refuses the other, both fail and retry after a random
// delay. Uniqueness therefore rests on every pair of successful claims
// sharing a member that granted both, and that member never grants two
// hosts at once. Limits: membership is what memberlist gossip says, so a
// host that has not yet learned of a holder, and whose peers have all
// forgotten the holder's promise without having received its reservation,
// could be granted the address; a daemon waits for its first join attempt
// before claiming to keep this window small. Under a partition, claims on
// the side that cannot reach a member fail until memberlist declares the
// other side dead; after that only a side holding a majority of the hosts it
// knows (live plus failed in the last ForgetFailedAfter, ties broken by the
// smallest host name) may claim, so the cluster prefers refusing to
// duplicating. A partition lasting longer than ForgetFailedAfter, or a
// host failing and another taking its addresses while it is down, can
// produce a duplicate, which its owner sees as a conflict when it claims its
// persisted address again after restarting. Clocks are not relied on for
// safety, only for promise expiry.
package gossip
