//go:build !linux

package encap

import (
	"errors"
	"net/netip"
)

// PathMTU is not available on this system: it reports an error, and the
// engine then assumes the interface MTU holds along every path.
func PathMTU(remote netip.AddrPort) (int, error) {
	return 0, errors.New("path mtu is only read on linux")
}
