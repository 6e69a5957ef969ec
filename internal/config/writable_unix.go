//go:build unix

package config

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// writableDir reports why the process cannot create entries in dir, or in
// the nearest existing directory above it when dir does not exist yet.
// It asks access(2), so nothing is created.
func writableDir(dir string) error {
	d, err := nearestDir(dir)
	if err != nil {
		return err
	}
	if err := unix.Access(d, unix.W_OK|unix.X_OK); err != nil {
		if d != dir {
			return fmt.Errorf("%s does not exist and %s, where it would be made, is not writable: %w", dir, d, err)
		}
		return fmt.Errorf("%s is not writable: %w", d, err)
	}
	return nil
}
