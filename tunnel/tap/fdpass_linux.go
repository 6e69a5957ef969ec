package tap

// A rootless container's TAP is made by a process that holds
// CAP_NET_ADMIN over the container's namespace (the OCI hook, run inside
// the rootless runtime's user namespace) and handed to the daemon, which
// has no privilege there, as a file descriptor (SCM_RIGHTS):
//
//	hook (userns of the runtime)          daemon (the user, no capability)
//	OpenInNetNS: setns, TUNSETIFF ──fd──▶ Adopt: check TUNGETIFF, serve it
//	ConfigureInNetNS: MAC, MTU, address, route  ◀── the endpoint's settings
//
// Closing the adopted device closes the descriptor, and the kernel then
// removes the link; the daemon cannot enter the namespace to check.

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

// OpenInNetNS opens a fresh TAP named name (default eth0) in the namespace
// at netns, with the virtio header and offloads Create uses, and returns
// it unconfigured and down. The caller needs CAP_NET_ADMIN over the
// namespace and access to /dev/net/tun.
func OpenInNetNS(netns, name string) (*os.File, error) {
	if name == "" {
		name = defaultName
	}
	if len(name) >= ifNameSize {
		return nil, fmt.Errorf("name: %q is longer than %d bytes", name, ifNameSize-1)
	}
	fd := -1
	err := ns.WithNetNSPath(netns, func(ns.NetNS) error {
		var err error
		fd, err = openTAP(name, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create tap %q in %s: %w", name, netns, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), nil
}

// ConfigureInNetNS sets the MAC, MTU, up state, address and default route
// (when cfg.Gateway is set) of the link cfg.Name in the namespace
// cfg.NetNS, as Create does for a TAP it makes itself.
func ConfigureInNetNS(cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("cannot configure tap %q in %s: %w", cfg.Name, cfg.NetNS, err)
	}
	err := ns.WithNetNSPath(cfg.NetNS, func(ns.NetNS) error {
		_, err := configureLink(&cfg)
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot configure tap %q in %s: %w", cfg.Name, cfg.NetNS, err)
	}
	return nil
}

// ErrNotTAP is what Adopt's error wraps when the descriptor is not a TAP
// set up as OpenInNetNS does.
var ErrNotTAP = errors.New("not a vxwire tap")

// Adopt serves the TAP f that another process opened with OpenInNetNS;
// cfg describes it: the TAP must be named cfg.Name and live in the
// namespace cfg.NetNS (a sender cannot pass one of another namespace off
// as the container's); MTU and Batch apply, and the other process
// configures the link. Adopt takes f over, closing it on error. The
// device's Close closes it, which removes the link.
func Adopt(f *os.File, cfg Config, l *slog.Logger) (*Native, error) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	cfg.Handoff = true // nothing to configure here: addresses are the opener's
	if err := cfg.validate(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot adopt tap %q of %s: %w", cfg.Name, cfg.NetNS, err)
	}
	if err := checkTAP(f, cfg.Name); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot adopt tap %q of %s: %w", cfg.Name, cfg.NetNS, err)
	}
	if err := checkTAPNetNS(f, cfg.NetNS); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot adopt tap %q of %s: %w", cfg.Name, cfg.NetNS, err)
	}
	d := &Native{l: l, cfg: cfg, file: f}
	d.readFn, d.waitFn, d.writeFn = d.readOnce, d.waitReady, d.writeOnce
	var err error
	if d.rc, err = f.SyscallConn(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot adopt tap %q of %s: %w", cfg.Name, cfg.NetNS, err)
	}
	l.Debug("tap adopted", "netns", cfg.NetNS)
	return d, nil
}

// checkTAP checks that f is a TAP named name with the virtio header, and
// sets the header size, the offloads and non-blocking mode the reader and
// writer rely on (the sender may have skipped them).
func checkTAP(f *os.File, name string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq("")
		if err == nil {
			err = unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr)
		}
		switch {
		case err != nil:
			opErr = fmt.Errorf("%w: tungetiff: %v", ErrNotTAP, err)
			return
		case ifr.Name() != name:
			opErr = fmt.Errorf("%w: it is named %q", ErrNotTAP, ifr.Name())
			return
		}
		const want = unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR
		if flags := ifr.Uint16(); flags&want != want || flags&unix.IFF_TUN != 0 {
			opErr = fmt.Errorf("%w: flags %#x lack IFF_TAP, IFF_NO_PI or IFF_VNET_HDR", ErrNotTAP, flags)
			return
		}
		if err := unix.IoctlSetPointerInt(int(fd), unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
			opErr = fmt.Errorf("tunsetvnethdrsz: %w", err)
			return
		}
		if err := unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
			opErr = fmt.Errorf("tunsetoffload: %w", err)
			return
		}
		opErr = unix.SetNonblock(int(fd), true)
	})
	if err != nil {
		return err
	}
	return opErr
}

// checkTAPNetNS checks that TAP f lives in the namespace at path: the
// namespace the kernel reports for the device (TUNGETDEVNETNS, which needs
// CAP_NET_ADMIN over that namespace, as the owner of a rootless
// container's user namespace has) must be the file at path.
func checkTAPNetNS(f *os.File, path string) error {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return fmt.Errorf("cannot stat netns %s: %w", path, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var nsfd int
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		nsfd, opErr = unix.IoctlRetInt(int(fd), unix.TUNGETDEVNETNS)
	}); err != nil {
		return err
	}
	if opErr != nil {
		return fmt.Errorf("tungetdevnetns: %w", opErr)
	}
	defer unix.Close(nsfd)
	var got unix.Stat_t
	if err := unix.Fstat(nsfd, &got); err != nil {
		return fmt.Errorf("tungetdevnetns: %w", err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		return fmt.Errorf("%w (inode %d), not %s (inode %d)", ErrOtherNetNS, got.Ino, path, want.Ino)
	}
	return nil
}
