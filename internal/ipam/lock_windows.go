package ipam

import (
	"errors"
	"math"
	"os"

	"golang.org/x/sys/windows"
)

// lockExclusive locks all of f exclusively without waiting; the lock
// lasts until f is closed. It returns errLocked when another process
// holds it.
func lockExclusive(f *os.File) error {
	var ol windows.Overlapped
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, math.MaxUint32, math.MaxUint32, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLocked
	}
	return err
}
