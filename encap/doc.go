// Package encap carries overlay Ethernet frames across the underlay: the
// RFC 7348 VXLAN header codec, the overhead constants the MTU logic is built
// on, the flow hash that picks the outer UDP source port, and the batched
// underlay socket (Conn, with StdConn as the real implementation and
// encaptest.ChannelConn as the in-memory fake), and PathMTU, the kernel's
// path MTU to a peer (pmtu_linux.go).
//
// The package starts no goroutines, keeps no mutable package state and does
// no logging: every failure is returned to the caller, which counts it.
package encap
