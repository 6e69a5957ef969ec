// Package consensustest helps tests start consensus nodes on loopback.
package consensustest

import (
	"net"
	"net/netip"
	"testing"
)

// FreeAddrs returns n distinct TCP addresses on 127.0.0.1 that were free a
// moment ago. Every listener stays open until all n are known, so no two
// of them can be the same port.
func FreeAddrs(t testing.TB, n int) []netip.AddrPort {
	t.Helper()
	out := make([]netip.AddrPort, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, netip.MustParseAddrPort(ln.Addr().String()))
	}
	return out
}
