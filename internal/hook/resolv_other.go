//go:build !linux

package hook

import (
	"fmt"
	"runtime"

	"github.com/vxwire/vxwire/internal/api"
)

// writeResolvConf cannot write a container's /etc/resolv.conf here: it
// needs openat2(RESOLVE_IN_ROOT) below /proc/PID/root, which only Linux
// has.
func (h *Hook) writeResolvConf(int, string, api.Endpoint) error {
	return fmt.Errorf("writing a container's /etc/resolv.conf needs Linux (openat2 and /proc), not %s", runtime.GOOS)
}
