//go:build !windows

package crypto

import (
	"fmt"
	"net"

	"golang.zx2c4.com/wireguard/ipc"
)

// listenWireGuardDir listens on /var/run/wireguard/NAME.sock through
// wireguard-go's ipc package, as its own devices do.
func listenWireGuardDir(name string) (net.Listener, error) {
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		return nil, fmt.Errorf("cannot create uapi socket for %q: %w", name, err)
	}
	ln, err := ipc.UAPIListen(name, f)
	f.Close() // the listener holds its own descriptor
	if err != nil {
		return nil, fmt.Errorf("cannot listen on uapi socket for %q: %w", name, err)
	}
	return ln, nil
}
