// Package ipam allocates overlay addresses that are unique across every
// host of the overlay, honours explicitly requested addresses, and keeps
// allocations across daemon restarts.
//
// An Allocator owns this host's allocations, persisted in a Store (the
// flock-guarded FileStore in production, ipamtest.Store in tests). Before
// an address is handed out it is claimed through a Claimer, which the
// gossip cluster implements: the claim succeeds only if every live host
// grants it, and each host grants an address to one host at a time, so two
// hosts racing for the same address cannot both win. Both may lose a
// simultaneous race; the Allocator then retries with jittered exponential
// backoff, a bounded number of times, after trying the other free
// addresses, so one of them wins. A request for an explicit address is
// honoured or refused with a *ConflictError such as "address 10.77.0.10
// of network blue is in use by web on h2". The network address, the IPv4
// broadcast address and the gateway are never given out. See the gossip
// package for the guarantees and limits of claims under partitions and
// failures.
package ipam
