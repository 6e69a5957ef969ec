//go:build unix

package tunnel

import "golang.org/x/sys/unix"

// statNetNS returns the identity of the namespace file at path, or why it
// cannot be read.
func statNetNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, nil
}
