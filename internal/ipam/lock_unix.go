//go:build unix

package ipam

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// errLocked is what lockExclusive returns when another process holds
// the lock.
var errLocked = errors.New("locked by another process")

// lockExclusive takes an exclusive flock on f without waiting; the lock
// lasts until f is closed.
func lockExclusive(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
