package tap

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A container's TAP outlives the daemon: Create marks it persistent
// (TUNSETPERSIST), so that when the descriptor closes without Close (a
// crash, kill -9, or Keep on a graceful stop or an upgrade) the link
// stays in the container's namespace with every address and route on it,
// its carrier off and frames to it dropped until a daemon attaches again.
// The next daemon finds it by a saved Identity (Config.Reopen): the
// namespace's device and inode, so that a recycled namespace path never
// hands it someone else's link, and the link's index. The kernel deletes
// a persistent TAP with its namespace, so containers that go away take
// their TAPs with them.

// withNetNS runs fn in the namespace at path on a locked OS thread,
// passing the namespace's identity. If want is set and the namespace is
// another one, it returns ErrNetNSChanged without running fn. The
// namespace is opened once and fn runs in the one that was checked.
func withNetNS(path string, want *Identity, fn func(id Identity) error) error {
	netns, err := ns.GetNS(path)
	if err != nil {
		return err
	}
	defer netns.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(netns.Fd()), &st); err != nil {
		return fmt.Errorf("cannot stat netns %s: %w", path, err)
	}
	id := Identity{NetNSDev: uint64(st.Dev), NetNSIno: st.Ino}
	if want != nil && (want.NetNSDev != id.NetNSDev || want.NetNSIno != id.NetNSIno) {
		return fmt.Errorf("%w (device %d inode %d, the tap was made in %d/%d)",
			ErrNetNSChanged, id.NetNSDev, id.NetNSIno, want.NetNSDev, want.NetNSIno)
	}
	return netns.Do(func(ns.NetNS) error {
		id.NetNSCookie = netnsCookie()
		if want != nil && want.NetNSCookie != 0 && id.NetNSCookie != want.NetNSCookie {
			// The inode of a namespace that is gone, given to a new one.
			return fmt.Errorf("%w (cookie %d, the tap was made in %d)", ErrNetNSChanged, id.NetNSCookie, want.NetNSCookie)
		}
		return fn(id)
	})
}

// netnsCookie returns the cookie of the calling thread's network
// namespace, or 0 if the kernel has none.
func netnsCookie() uint64 {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0
	}
	return c
}

// reopenTAP attaches to the persistent TAP cfg.Name of index idx in the
// calling thread's namespace and sets its MAC and MTU if they differ from
// cfg, nothing else. It reports false and no error if no link has the
// name, ErrLinkChanged if another link (or another index) has it.
func reopenTAP(cfg *Config, idx int) (int, bool, error) {
	link, err := netlink.LinkByName(cfg.Name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, fmt.Errorf("cannot look up link: %w", err)
	}
	if !isOurTAP(link, idx) {
		return -1, false, fmt.Errorf("%w: %s is a %s of index %d, the tap had index %d",
			ErrLinkChanged, cfg.Name, link.Type(), link.Attrs().Index, idx)
	}
	fd, err := attachTAP(cfg.Name, 0)
	if err != nil {
		return -1, false, err
	}
	// The name might have changed hands between the look-up and the
	// attach: check again with the descriptor held.
	link, err = netlink.LinkByName(cfg.Name)
	if err == nil && !isOurTAP(link, idx) {
		err = fmt.Errorf("%w: %s changed while it was reopened", ErrLinkChanged, cfg.Name)
	}
	if err == nil {
		err = setDrifted(link, cfg)
	}
	if err != nil {
		unix.Close(fd)
		return -1, false, err
	}
	return fd, true, nil
}

// isOurTAP reports whether link is a TAP of index idx.
func isOurTAP(link netlink.Link, idx int) bool {
	t, ok := link.(*netlink.Tuntap)
	return ok && t.Mode == netlink.TUNTAP_MODE_TAP && link.Attrs().Index == idx
}

// setDrifted sets the MAC, MTU and GSO segment cap of link to cfg's where
// they differ.
func setDrifted(link netlink.Link, cfg *Config) error {
	a := link.Attrs()
	if cfg.MAC != nil && a.HardwareAddr.String() != cfg.MAC.String() {
		if err := netlink.LinkSetHardwareAddr(link, cfg.MAC); err != nil {
			return fmt.Errorf("cannot set mac %s: %w", cfg.MAC, err)
		}
	}
	if a.MTU != cfg.MTU {
		if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
			return fmt.Errorf("cannot set mtu %d: %w", cfg.MTU, err)
		}
	}
	setGSOMaxSegs(link, cfg)
	return nil
}

// setPersist sets or clears the TAP's persistent flag.
func (d *Native) setPersist(on bool) error {
	v := 0
	if on {
		v = 1
	}
	var ierr error
	err := d.rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, v) })
	if err == nil && ierr != nil {
		err = fmt.Errorf("tunsetpersist: %w", ierr)
	}
	return err
}

// Identity returns the namespace and index of the device's link, for a
// later Config.Reopen. It is safe for concurrent use.
func (d *Native) Identity() Identity {
	id := d.nsid
	id.Index = d.ifindex
	return id
}

// Persistent reports whether the link outlives the device (Keep leaves it
// in place). It is safe for concurrent use.
func (d *Native) Persistent() bool { return d.persist }

// Keep closes the device but leaves a persistent link where it is, with
// its addresses and routes, for the next daemon to reopen. Pending and later Wait, Read and Write
// calls return net.ErrClosed. Close and Keep are idempotent; once either
// has run, both return its result.
func (d *Native) Keep() error {
	if !d.persist {
		return d.Close()
	}
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		if err := d.file.Close(); err != nil {
			d.closeErr = fmt.Errorf("cannot close tap %q in %s: %w", d.cfg.Name, d.cfg.NetNS, err)
		}
		d.l.Debug("tap kept", "mac", d.cfg.MAC, "ifindex", d.ifindex)
	})
	return d.closeErr
}

// Remove deletes the persistent TAP name that an earlier Create made in
// the namespace at path, as id identifies it, when no device holds it any
// more (a leftover of a container that left while no daemon ran). A
// namespace that is gone or is another one, and a name that is gone or
// held by another link, leave nothing to delete: Remove returns nil then.
func Remove(path, name string, id Identity) error {
	err := withNetNS(path, &id, func(Identity) error {
		link, err := netlink.LinkByName(name)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot look up link: %w", err)
		}
		if !isOurTAP(link, id.Index) {
			return nil
		}
		if err := netlink.LinkDel(link); err != nil {
			return fmt.Errorf("cannot delete link: %w", err)
		}
		return nil
	})
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	if err == nil || errors.Is(err, ErrNetNSChanged) || errors.As(err, &notExist) || errors.As(err, &notNS) {
		return nil
	}
	return fmt.Errorf("cannot remove tap %q in %s: %w", name, path, err)
}

// Where returns where the device's link is now, which differs from where
// Create made it once another program moved it (a handoff TAP that Docker
// moved into a container and renamed): the namespace's identity and the
// link's index there, and its name. It asks the kernel through the
// descriptor (TUNGETDEVNETNS, TUNGETIFF). It is safe for concurrent use.
func (d *Native) Where() (Identity, string, error) {
	nsfd, name := -1, ""
	var ierr error
	err := d.rc.Control(func(fd uintptr) {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNGETDEVNETNS, 0)
		if errno != 0 {
			ierr = fmt.Errorf("tungetdevnetns: %w", errno)
			return
		}
		nsfd = int(r)
		ifr, _ := unix.NewIfreq("")
		if err := unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); err != nil {
			ierr = fmt.Errorf("tungetiff: %w", err)
			return
		}
		name = ifr.Name()
	})
	if nsfd >= 0 {
		defer unix.Close(nsfd)
	}
	if err == nil {
		err = ierr
	}
	if err != nil {
		return Identity{}, "", fmt.Errorf("cannot locate tap %q: %w", d.cfg.Name, err)
	}
	var id Identity
	err = withNetNS(fmt.Sprintf("/proc/self/fd/%d", nsfd), nil, func(in Identity) error {
		id = in
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		id.Index = link.Attrs().Index
		return nil
	})
	if err != nil {
		return Identity{}, "", fmt.Errorf("cannot locate tap %q: %w", d.cfg.Name, err)
	}
	return id, name, nil
}

// FindNetNS returns a path that names the namespace of id (its device and
// inode): /proc/PID/ns/net of a process in it, or "" if no process is in
// it. It finds a moved handoff TAP's namespace again, which no saved path
// names (Docker's namespace files live in its own mount namespace).
func FindNetNS(id Identity) string {
	paths, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range paths {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && uint64(st.Dev) == id.NetNSDev && st.Ino == id.NetNSIno {
			return p
		}
	}
	return ""
}
