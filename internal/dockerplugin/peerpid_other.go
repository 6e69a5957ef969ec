//go:build !linux

package dockerplugin

import "net"

// peerPID returns 0: only Linux tells a unix socket's peer process, and
// Docker's network plugins run beside a Linux dockerd. The plugin then
// calls the default /var/run/docker.sock.
func peerPID(net.Conn) int { return 0 }
