package tap

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// superPool holds superframe read buffers. It is shared by every device of
// the process on purpose: a device takes a buffer only when Wait has
// reported data and gives it back as soon as the TAP is drained, so idle
// devices hold none and busy ones reuse each other's. Entries are
// *[superSize]byte so that Put does not allocate.
var superPool = sync.Pool{New: func() any { return new([superSize]byte) }}

// Native is a TAP device in a container's network namespace, opened with
// IFF_VNET_HDR and TSO offloads and driven through the Go netpoller. It
// implements Device: Wait and Read must be called from one goroutine at a
// time (the port's reader); Write, Stats, MTU, BatchSize and Close
// are safe for concurrent use.
type Native struct {
	l       *slog.Logger
	cfg     Config
	file    *os.File
	rc      syscall.RawConn
	ifindex int
	nsid    Identity // the namespace's identity; Index is unset
	persist bool     // the link outlives the descriptor until Close
	adopted bool     // made by another process in a namespace the daemon may not enter (AdoptKept)

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	ctr       counters

	// rd is the reader's state, owned by the goroutine calling Wait/Read.
	rd     reader
	readFn func(fd uintptr) bool // d.readOnce, bound once to avoid allocating
	waitFn func(fd uintptr) bool // d.waitReady, bound once

	// wr is the writers' state, guarded by wmu.
	wmu     sync.Mutex
	wr      writer
	writeFn func(fd uintptr) bool // d.writeOnce, bound once
}

var _ Device = (*Native)(nil)

// Create makes a TAP named cfg.Name in the namespace at cfg.NetNS and
// configures its MAC, MTU, address and default route there, or attaches
// again to the TAP a Config.Reopen names. The TAP is persistent: it
// outlives the returned device and the process (a crash or a restart
// leaves the container's interface, addresses and routes in place) until
// Close removes it or its namespace goes away. A handoff TAP is too,
// wherever it was moved (see Native.Where).
// On error nothing new is left behind. l receives lifecycle events at
// Debug and rate-limited I/O errors at Warn; nil discards them.
func Create(cfg Config, l *slog.Logger) (*Native, error) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cannot create tap %q in %s: %w", cfg.Name, cfg.NetNS, err)
	}
	d := &Native{l: l, cfg: cfg}
	d.readFn, d.waitFn, d.writeFn = d.readOnce, d.waitReady, d.writeOnce

	fd := -1
	success, reopened := false, false
	defer func() {
		if success {
			return
		}
		if fd >= 0 && !reopened {
			unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0) // the kernel removes it on close
		}
		if d.file != nil {
			d.file.Close()
		} else if fd >= 0 {
			unix.Close(fd)
		}
		if d.ifindex != 0 && !reopened {
			d.ensureGone()
		}
	}()
	err := withNetNS(cfg.NetNS, cfg.Reopen, func(id Identity) error {
		d.nsid = id
		var err error
		if cfg.Reopen != nil {
			// A failed reopen leaves d.ifindex unset: the link is
			// not this call's to remove.
			fd, reopened, err = reopenTAP(&cfg, cfg.Reopen.Index)
			if err != nil {
				return err
			}
			if reopened {
				d.ifindex = cfg.Reopen.Index
				return nil
			}
		}
		if fd, err = openTAP(cfg.Name, true); err != nil {
			return err
		}
		if cfg.Handoff {
			d.ifindex, err = configureHandoff(&cfg)
		} else {
			d.ifindex, err = configureLink(&cfg)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create tap %q in %s: %w", cfg.Name, cfg.NetNS, err)
	}
	d.persist = true
	d.file = os.NewFile(uintptr(fd), "/dev/net/tun")
	if d.rc, err = d.file.SyscallConn(); err != nil {
		return nil, fmt.Errorf("cannot create tap %q in %s: %w", cfg.Name, cfg.NetNS, err)
	}
	success = true
	if reopened {
		l.Debug("tap reopened", "mac", cfg.MAC, "ifindex", d.ifindex)
	} else {
		l.Debug("tap created", "mac", cfg.MAC, "ifindex", d.ifindex)
	}
	return d, nil
}

// openTAP opens a fresh TAP named name in the calling thread's namespace,
// persistent if persist is set, with the virtio header and TSO offloads
// enabled, and returns its nonblocking file descriptor.
func openTAP(name string, persist bool) (int, error) {
	// IFF_TUN_EXCL refuses to attach to an existing device.
	fd, err := attachTAP(name, unix.IFF_TUN_EXCL)
	if err != nil {
		return -1, err
	}
	if persist {
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("tunsetpersist: %w", err)
		}
	}
	return fd, nil
}

// attachTAP opens /dev/net/tun and attaches it to the TAP named name in
// the calling thread's namespace (making one unless extra holds
// IFF_TUN_EXCL and one exists), with the virtio header and TSO offloads
// enabled, and returns the nonblocking file descriptor.
func attachTAP(name string, extra uint16) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | extra)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tunsetiff: %w", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tunsetvnethdrsz: %w", err)
	}
	offload := unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offload); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("tunsetoffload: %w", err)
	}
	return fd, nil
}

// configureLink sets the MAC, MTU, up state, address and default route of
// the link cfg.Name in the calling thread's namespace and returns its
// index.
func configureLink(cfg *Config) (int, error) {
	link, idx, err := setMACAndMTU(cfg)
	if err != nil {
		return idx, err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return idx, fmt.Errorf("cannot set link up: %w", err)
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(cfg.Addr)}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return idx, fmt.Errorf("cannot add address %s: %w", cfg.Addr, err)
	}
	if !cfg.Gateway.IsValid() {
		return idx, nil
	}
	unspec := netip.IPv4Unspecified()
	if cfg.Gateway.Is6() {
		unspec = netip.IPv6Unspecified()
	}
	route := &netlink.Route{
		LinkIndex: idx,
		Dst:       prefixIPNet(netip.PrefixFrom(unspec, 0)),
		Gw:        cfg.Gateway.AsSlice(),
	}
	if err := netlink.RouteAdd(route); err != nil {
		return idx, fmt.Errorf("cannot add default route via %s: %w", cfg.Gateway, err)
	}
	return idx, nil
}

// configureHandoff sets the MAC and MTU of the link cfg.Name in the
// calling thread's namespace and returns its index; the rest is left to
// whoever moves the link into its container (Config.Handoff).
func configureHandoff(cfg *Config) (int, error) {
	_, idx, err := setMACAndMTU(cfg)
	return idx, err
}

// setMACAndMTU finds the link cfg.Name in the calling thread's namespace
// and sets its MAC (when cfg names one) and MTU, the part of the set-up
// that a handoff link and a container's own link share.
func setMACAndMTU(cfg *Config) (netlink.Link, int, error) {
	link, err := netlink.LinkByName(cfg.Name)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot find link: %w", err)
	}
	idx := link.Attrs().Index
	if cfg.MAC != nil {
		if err := netlink.LinkSetHardwareAddr(link, cfg.MAC); err != nil {
			return nil, idx, fmt.Errorf("cannot set mac %s: %w", cfg.MAC, err)
		}
	}
	if err := netlink.LinkSetMTU(link, cfg.MTU); err != nil {
		return nil, idx, fmt.Errorf("cannot set mtu %d: %w", cfg.MTU, err)
	}
	setGSOMaxSegs(link, cfg)
	return link, idx, nil
}

// setGSOMaxSegs applies cfg.GSOMaxSegs to link where it differs. A
// refusal is ignored: the kernel's default works, with fuller batches
// lost (Config.GSOMaxSegs).
func setGSOMaxSegs(link netlink.Link, cfg *Config) {
	if cfg.GSOMaxSegs > 0 && link.Attrs().GSOMaxSegs != uint32(cfg.GSOMaxSegs) {
		netlink.LinkSetGSOMaxSegs(link, cfg.GSOMaxSegs)
	}
}

// prefixIPNet converts p, keeping its host bits, to a *net.IPNet.
func prefixIPNet(p netip.Prefix) *net.IPNet {
	bits := p.Addr().BitLen()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// Close removes the TAP: it clears the persistent flag and closes the
// descriptor, which makes the kernel delete the link, then checks that
// the link is gone from the namespace and deletes it if it lingers (its
// file descriptor leaked into another process). Pending and later Wait,
// Read and Write calls return net.ErrClosed. Close and Keep are
// idempotent; every call returns the first call's result.
func (d *Native) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		var err error
		if d.persist {
			err = d.setPersist(false)
		}
		err = errors.Join(err, d.file.Close())
		// An adopted TAP is not checked: the daemon may not enter its
		// namespace, and the link went with the descriptor.
		if d.ifindex != 0 && !d.adopted {
			if gerr := d.ensureGone(); gerr != nil {
				err = errors.Join(err, gerr)
			}
		}
		if err != nil {
			d.closeErr = fmt.Errorf("cannot close tap %q in %s: %w", d.cfg.Name, d.cfg.NetNS, err)
		}
		d.l.Debug("tap closed", "mac", d.cfg.MAC)
	})
	return d.closeErr
}

// ensureGone deletes the device's link if it is still in its namespace. A
// namespace that no longer exists holds no link.
func (d *Native) ensureGone() error {
	err := ns.WithNetNSPath(d.cfg.NetNS, func(ns.NetNS) error {
		link, err := netlink.LinkByName(d.cfg.Name)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot look up link: %w", err)
		}
		if link.Attrs().Index != d.ifindex || link.Type() != "tuntap" {
			return nil // a different link that took the name
		}
		if err := netlink.LinkDel(link); err != nil {
			return fmt.Errorf("cannot delete lingering link: %w", err)
		}
		return nil
	})
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	if errors.As(err, &notExist) || errors.As(err, &notNS) {
		return nil
	}
	return err
}

// mapErr turns an error from the file's RawConn into net.ErrClosed once
// the device is closed, and wraps anything else.
func (d *Native) mapErr(op string, err error) error {
	if d.closed.Load() || errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	return fmt.Errorf("cannot %s tap %q: %w", op, d.cfg.Name, err)
}

// BatchSize returns Config.Batch. It is safe for concurrent use.
func (d *Native) BatchSize() int { return d.cfg.Batch }

// MTU returns Config.MTU. It is safe for concurrent use.
func (d *Native) MTU() int { return d.cfg.MTU }

// Stats returns a snapshot of the device's counters. It is safe for
// concurrent use.
func (d *Native) Stats() Stats { return d.ctr.snapshot() }

// logLimited logs an unexpected I/O error at Warn, at most once per
// logInterval; last is the caller's timestamp of its previous log.
func (d *Native) logLimited(last *time.Time, msg string, err error) {
	if now := time.Now(); now.Sub(*last) >= logInterval {
		*last = now
		d.l.Warn(msg, "error", err)
	}
}

// logInterval is the least time between two rate-limited logs.
const logInterval = 10 * time.Second
