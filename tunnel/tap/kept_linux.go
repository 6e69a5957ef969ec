package tap

// A rootless container's TAP outlives the daemon too. The runtime's hook
// makes it and passes it (fdpass_linux.go); the daemon marks it
// persistent (TUNSETPERSIST needs no capability on an attached
// descriptor) and saves its Identity. The next daemon cannot enter the
// namespace to reopen it, so a helper that joins the owning user
// namespace and the network namespace (NSHelper) attaches to it again and
// passes it back with a socket made beside it:
//
//	daemon (the user)                     helper (user ns + net ns of the container)
//	NSHelper.OpenKept ───────────────────▶ TUNSETIFF on the existing eth0
//	AdoptKept ◀── TAP fd + socket fd ───── socket(AF_UNIX)
//	  TUNGETIFF: name and flags
//	  TUNGETDEVNETNS == SIOCGSKNS(socket): one live namespace
//	  SO_NETNS_COOKIE(socket), SIOCGIFINDEX, NS_GET_USERNS, NS_GET_OWNER_UID
//	  == the saved Identity, owned by the daemon's user
//
// Nothing the helper says is believed: every check asks the kernel about
// the descriptors. The TAP and the socket are in one namespace because
// both namespace descriptors name the same live inode; the socket's
// cookie, never reused while the system runs, then tells a recycled
// namespace (same inode, new namespace) from the one the TAP was kept in.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// OpenKeptInNetNS attaches to the persistent TAP name in the namespace at
// netns, without making one, and makes a socket there (NSHelper.OpenKept,
// run by the helper inside the container's namespaces). It fails with
// ErrTAPGone if no TAP has the name.
func OpenKeptInNetNS(netns, name string) (tapFile, sock *os.File, err error) {
	fd, sfd := -1, -1
	err = ns.WithNetNSPath(netns, func(ns.NetNS) error {
		link, err := netlink.LinkByName(name)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return fmt.Errorf("%w: no link %q", ErrTAPGone, name)
		}
		if err != nil {
			return fmt.Errorf("cannot look up link: %w", err)
		}
		if t, ok := link.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TAP {
			return fmt.Errorf("%w: %s is a %s", ErrLinkChanged, name, link.Type())
		}
		if fd, err = attachTAP(name, 0); err != nil {
			return err
		}
		sfd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd) // persistent: the link stays
		}
		return nil, nil, fmt.Errorf("cannot reopen tap %q in %s: %w", name, netns, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), os.NewFile(uintptr(sfd), "netns-socket"), nil
}

// SocketInNetNS makes a socket in the namespace at netns (NSHelper.Socket).
func SocketInNetNS(netns string) (*os.File, error) {
	sfd := -1
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error {
		var err error
		sfd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot make a socket in %s: %w", netns, err)
	}
	return os.NewFile(uintptr(sfd), "netns-socket"), nil
}

// AdoptKept serves the TAP f as Adopt does, and keeps it: the TAP is
// marked persistent, so that it outlives the device and the daemon as
// Create's does, and Identity names it for a later reopen. sock is a
// socket made in the TAP's namespace (NSHelper), through which the kernel
// tells the namespace's cookie and the link's index. The namespace must
// belong to a user namespace the daemon's user owns (else ErrNotOwned),
// unless the daemon runs as root. With cfg.Reopen set, f must be that TAP
// (else ErrNetNSChanged or ErrLinkChanged), and is refused untouched: a
// refused TAP stays persistent where it is. AdoptKept takes f and sock
// over, closing them on error.
func AdoptKept(f, sock *os.File, cfg Config, l *slog.Logger) (*Native, error) {
	defer sock.Close()
	cfg = cfg.withDefaults()
	id, err := locateKept(f, sock, cfg.Name)
	if err == nil && cfg.Reopen != nil {
		err = sameKept(id, *cfg.Reopen)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot adopt tap %q of %s: %w", cfg.Name, cfg.NetNS, err)
	}
	d, err := Adopt(f, cfg, l)
	if err != nil {
		return nil, err
	}
	if cfg.Reopen == nil {
		if err := d.setPersist(true); err != nil {
			d.Close()
			return nil, fmt.Errorf("cannot keep tap %q of %s: %w", cfg.Name, cfg.NetNS, err)
		}
	}
	d.persist, d.adopted = true, true
	d.ifindex = id.Index
	id.Index = 0
	d.nsid = id
	return d, nil
}

// RemoveAdopted deletes the kept TAP f that a NSHelper reopened (with
// sock, a socket made beside it), if it is the one id names: it clears
// the persistent flag and closes it, and the kernel removes the link. A
// TAP that is not the one is left where it is, and its error returned.
func RemoveAdopted(f, sock *os.File, name string, id Identity) error {
	defer sock.Close()
	defer f.Close()
	got, err := locateKept(f, sock, name)
	if err == nil {
		err = sameKept(got, id)
	}
	if err == nil {
		err = checkTAP(f, name)
	}
	if err == nil {
		var ierr error
		rc, cerr := f.SyscallConn()
		if cerr == nil {
			cerr = rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, 0) })
		}
		err = errors.Join(cerr, ierr)
	}
	if err != nil {
		return fmt.Errorf("cannot remove kept tap %q: %w", name, err)
	}
	return nil
}

// locateKept returns the Identity of TAP f named name from the kernel,
// given sock, a socket in the same namespace: both descriptors' namespaces
// must be one, which gives the cookie and the index by sock.
func locateKept(f, sock *os.File, name string) (Identity, error) {
	tapNS, err := fileIoctlFd(f, unix.TUNGETDEVNETNS)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: tungetdevnetns: %v", ErrNotTAP, err)
	}
	defer unix.Close(tapNS)
	sockNS, err := fileIoctlFd(sock, unix.SIOCGSKNS)
	if err != nil {
		return Identity{}, fmt.Errorf("siocgskns: %w", err)
	}
	defer unix.Close(sockNS)
	var ts, ss unix.Stat_t
	if err := errors.Join(unix.Fstat(tapNS, &ts), unix.Fstat(sockNS, &ss)); err != nil {
		return Identity{}, err
	}
	if ts.Dev != ss.Dev || ts.Ino != ss.Ino {
		return Identity{}, fmt.Errorf("%w: the socket beside it is in inode %d, the tap in %d", ErrOtherNetNS, ss.Ino, ts.Ino)
	}
	id := Identity{NetNSDev: uint64(ts.Dev), NetNSIno: ts.Ino}
	err = fileControl(sock, func(fd int) error {
		c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		if err == nil {
			id.NetNSCookie = c
		}
		ifr, err := unix.NewIfreq(name)
		if err == nil {
			err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr)
		}
		if err != nil {
			return fmt.Errorf("%w: no link %q beside the socket: %v", ErrLinkChanged, name, err)
		}
		id.Index = int(ifr.Uint32())
		return nil
	})
	if err != nil {
		return Identity{}, err
	}
	return id, ownedUserNS(tapNS, &id)
}

// CheckOwned checks that the namespace at netns belongs to a user
// namespace the daemon's user owns (else ErrNotOwned), before a NSHelper
// is sent into it. Root owns every namespace.
func CheckOwned(netns string) error {
	fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open netns %s: %w", netns, err)
	}
	defer unix.Close(fd)
	var id Identity
	if err := ownedUserNS(fd, &id); err != nil {
		return fmt.Errorf("netns %s: %w", netns, err)
	}
	return nil
}

// ownedUserNS sets id's user namespace from the namespace descriptor
// netns and checks that the daemon's user owns it.
func ownedUserNS(netns int, id *Identity) error {
	ufd, err := unix.IoctlRetInt(netns, unix.NS_GET_USERNS)
	if err != nil {
		return fmt.Errorf("%w: ns_get_userns: %v", ErrNotOwned, err)
	}
	defer unix.Close(ufd)
	var st unix.Stat_t
	if err := unix.Fstat(ufd, &st); err != nil {
		return err
	}
	id.UserNSDev, id.UserNSIno = uint64(st.Dev), st.Ino
	owner, err := unix.IoctlGetUint32(ufd, unix.NS_GET_OWNER_UID)
	if err != nil {
		return fmt.Errorf("ns_get_owner_uid: %w", err)
	}
	if euid := os.Geteuid(); euid != 0 && int(owner) != euid {
		return fmt.Errorf("%w (owner uid %d, the daemon runs as %d)", ErrNotOwned, owner, euid)
	}
	return nil
}

// sameKept checks that got, located now, is the TAP want names.
func sameKept(got, want Identity) error {
	switch {
	case got.NetNSDev != want.NetNSDev || got.NetNSIno != want.NetNSIno:
		return fmt.Errorf("%w (inode %d, the tap was kept in %d)", ErrNetNSChanged, got.NetNSIno, want.NetNSIno)
	case want.NetNSCookie != 0 && got.NetNSCookie != want.NetNSCookie:
		return fmt.Errorf("%w (cookie %d, the tap was kept in %d)", ErrNetNSChanged, got.NetNSCookie, want.NetNSCookie)
	case got.UserNSDev != want.UserNSDev || got.UserNSIno != want.UserNSIno:
		return fmt.Errorf("%w (owned by user namespace inode %d, the tap was kept under %d)", ErrNetNSChanged, got.UserNSIno, want.UserNSIno)
	case got.Index != want.Index:
		return fmt.Errorf("%w: index %d, the tap had index %d", ErrLinkChanged, got.Index, want.Index)
	}
	return nil
}

// fileIoctlFd runs an ioctl that returns a new descriptor on f.
func fileIoctlFd(f *os.File, req uint) (int, error) {
	out := -1
	err := fileControl(f, func(fd int) error {
		var err error
		out, err = unix.IoctlRetInt(fd, req)
		return err
	})
	return out, err
}

// fileControl runs fn on f's descriptor.
func fileControl(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}
