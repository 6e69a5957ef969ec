//go:build !linux

package tap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
)

// ErrNeedsLinux is what Create and Adopt wrap on this system: a TAP in a
// container's network namespace exists only on Linux. It wraps
// errors.ErrUnsupported.
var ErrNeedsLinux = fmt.Errorf("container endpoints (TAP in a network namespace) need Linux; on %s, use a host endpoint, SOCKS5 or [[forward]]: %w",
	runtime.GOOS, errors.ErrUnsupported)

// Native is a TAP device in a container's network namespace. TAP devices
// in namespaces exist only on Linux; elsewhere Create always fails and
// this type only keeps callers compiling.
type Native struct{}

var _ Device = (*Native)(nil)

// Create returns an error wrapping ErrNeedsLinux on this system.
func Create(cfg Config, _ *slog.Logger) (*Native, error) {
	cfg = cfg.withDefaults()
	return nil, fmt.Errorf("cannot create tap %q in %s: %w", cfg.Name, cfg.NetNS, ErrNeedsLinux)
}

// Adopt closes f and returns an error wrapping ErrNeedsLinux.
func Adopt(f *os.File, cfg Config, _ *slog.Logger) (*Native, error) {
	f.Close()
	cfg = cfg.withDefaults()
	return nil, fmt.Errorf("cannot adopt tap %q of %s: %w", cfg.Name, cfg.NetNS, ErrNeedsLinux)
}

// Wait returns net.ErrClosed.
func (*Native) Wait() error { return net.ErrClosed }

// Read returns net.ErrClosed.
func (*Native) Read([][]byte, []int, int) (int, error) { return 0, net.ErrClosed }

// Write returns net.ErrClosed.
func (*Native) Write([][]byte) (int, error) { return 0, net.ErrClosed }

// BatchSize returns 1.
func (*Native) BatchSize() int { return 1 }

// MTU returns 0.
func (*Native) MTU() int { return 0 }

// Close does nothing.
func (*Native) Close() error { return nil }

// Stats returns zero counters.
func (*Native) Stats() Stats { return Stats{} }

// Keep does nothing.
func (*Native) Keep() error { return nil }

// Identity returns the zero Identity.
func (*Native) Identity() Identity { return Identity{} }

// Persistent returns false.
func (*Native) Persistent() bool { return false }

// Remove returns nil: there is nothing to remove on this system.
func Remove(path, name string, id Identity) error { return nil }

// Where returns an error wrapping errors.ErrUnsupported.
func (*Native) Where() (Identity, string, error) { return Identity{}, "", errors.ErrUnsupported }

// FindNetNS returns "".
func FindNetNS(Identity) string { return "" }

// AdoptKept returns ErrNeedsLinux, closing f and sock.
func AdoptKept(f, sock *os.File, cfg Config, l *slog.Logger) (*Native, error) {
	sock.Close()
	return Adopt(f, cfg, l)
}

// RemoveAdopted closes f and sock: there is no TAP to remove here.
func RemoveAdopted(f, sock *os.File, _ string, _ Identity) error {
	sock.Close()
	f.Close()
	return ErrNeedsLinux
}

// CheckOwned returns ErrNeedsLinux.
func CheckOwned(string) error { return ErrNeedsLinux }
