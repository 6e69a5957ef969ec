package crypto

import (
	"fmt"
	"net"

	"golang.zx2c4.com/wireguard/ipc"
)

// listenWireGuardDir listens on wireguard-go's named pipe for name
// (\\.\pipe\ProtectedPrefix\Administrators\WireGuard\NAME), as its own
// devices do on Windows; only an elevated daemon may create it.
func listenWireGuardDir(name string) (net.Listener, error) {
	ln, err := ipc.UAPIListen(name)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on uapi pipe for %q: %w", name, err)
	}
	return ln, nil
}
