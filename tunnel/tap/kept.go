package tap

import (
	"errors"
	"os"
)

// NSHelper reaches into a rootless container's namespaces for a daemon
// that holds no capability: a process that joins the user namespace
// owning the container's network namespace holds CAP_NET_ADMIN there,
// which the daemon, outside it, cannot gain (a threaded Go program cannot
// join a user namespace). What it returns is only trusted after the
// daemon checked it against the kernel (AdoptKept). Implementations are
// safe for concurrent use.
type NSHelper interface {
	// Socket returns a socket made in the network namespace at netns.
	Socket(netns string) (*os.File, error)
	// OpenKept attaches to the persistent TAP ifname in the network
	// namespace at netns, without making one, and returns it with a
	// socket made in the same namespace. It fails with ErrTAPGone if no
	// TAP is named ifname there.
	OpenKept(netns, ifname string) (tapFile, sock *os.File, err error)
}

var (
	// ErrOtherNetNS is what Adopt's error wraps when the TAP lives in
	// another namespace than the one the attach names.
	ErrOtherNetNS = errors.New("the tap lives in another network namespace")
	// ErrTAPGone is returned when a kept TAP is no longer where its
	// record says.
	ErrTAPGone = errors.New("the kept tap is gone")
	// ErrNotOwned is returned when a passed TAP's namespace belongs to a
	// user namespace that the daemon's user does not own.
	ErrNotOwned = errors.New("the namespace belongs to a user namespace the daemon's user does not own")
)
