package tap

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Config describes the TAP that Create makes inside a container's network
// namespace. The zero value of an optional field selects its default.
type Config struct {
	// NetNS is the path of the container's network namespace, such as
	// /var/run/netns/NAME or /proc/PID/ns/net. Required.
	NetNS string
	// Name is the interface name inside the namespace; default "eth0".
	Name string
	// MAC is the interface's unicast MAC address; nil lets the kernel
	// pick a random one.
	MAC net.HardwareAddr
	// Addr is the interface address with its subnet length, for example
	// 10.99.0.2/24. Required.
	Addr netip.Prefix
	// Gateway is the next hop of the default route, inside Addr's
	// subnet; the zero Addr adds no route.
	Gateway netip.Addr
	// MTU is the interface's IP MTU, 68 to 65521 (the TAP maximum);
	// default 1500.
	MTU int
	// Batch is the largest number of frames one Read returns, 1 to 1024;
	// default 64.
	Batch int
	// GSOMaxSegs caps the segments of the TSO superframes the container
	// hands the TAP (the link's gso_max_segs), 0 to 65535; 0 leaves the
	// kernel's default. It is set with the MTU, and on a reopened TAP
	// where it differs. A kernel that refuses to change it keeps its
	// default: the cap only shapes batches (see encap.FramesPerSend).
	GSOMaxSegs int
	// Handoff makes a TAP that another program moves into a container and
	// configures (Docker, through its plugin protocol): only the MAC and
	// the MTU are set; the link stays down, without address or route, and
	// Addr and Gateway are ignored. The device keeps working wherever the
	// link is moved, since its file descriptor stays with the daemon.
	Handoff bool
	// Reopen, when set, names the persistent TAP an earlier Create made
	// (its Identity, saved by the caller): if the namespace at NetNS is
	// still the same one and its link Name still has the same index,
	// Create attaches to that link again and leaves its addresses, routes
	// and up state as they are (the container may have changed them);
	// only a MAC or MTU that differs from this Config is set. If the
	// namespace is another one, Create fails with ErrNetNSChanged and
	// touches nothing; if another link holds Name, with ErrLinkChanged.
	// If Name is gone, a new TAP is made as without Reopen.
	Reopen *Identity
}

// Identity says which TAP a device is: the namespace it lives in (the
// device and inode of the namespace's nsfs file, which a recycled path
// such as /proc/PID/ns/net does not keep, and the namespace's cookie) and
// its interface index there. Callers save it to find the link again after
// a restart (Config.Reopen).
type Identity struct {
	NetNSDev uint64 `json:"netns_dev"`
	NetNSIno uint64 `json:"netns_ino"`
	// NetNSCookie is the namespace's cookie (SO_NETNS_COOKIE, Linux
	// 5.14): unlike the inode, which the kernel gives to a new namespace
	// once the old one is gone, it is never reused while the system
	// runs. Zero when the kernel has none; then only the inode is
	// compared.
	NetNSCookie uint64 `json:"netns_cookie,omitempty"`
	Index       int    `json:"ifindex"`
	// UserNSDev and UserNSIno identify the user namespace that owns the
	// network namespace, for a TAP that a rootless container's runtime
	// made and the daemon keeps (AdoptKept); zero for the daemon's own.
	UserNSDev uint64 `json:"userns_dev,omitempty"`
	UserNSIno uint64 `json:"userns_ino,omitempty"`
}

var (
	// ErrNetNSChanged is returned when a namespace path names another
	// namespace than the one a saved Identity was taken in.
	ErrNetNSChanged = errors.New("the namespace path names another namespace")
	// ErrLinkChanged is returned when the interface name of a saved
	// Identity is held by another link.
	ErrLinkChanged = errors.New("another link holds the interface name")
)

const (
	ifNameSize   = 16 // IFNAMSIZ, including the terminating NUL
	defaultName  = "eth0"
	defaultMTU   = 1500
	defaultBatch = 64
	maxBatch     = 1024
)

// withDefaults returns cfg with defaults filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Name == "" {
		cfg.Name = defaultName
	}
	if cfg.MTU == 0 {
		cfg.MTU = defaultMTU
	}
	if cfg.Batch == 0 {
		cfg.Batch = defaultBatch
	}
	return cfg
}

// validate names the first field of cfg that is out of range.
func (cfg *Config) validate() error {
	switch {
	case cfg.NetNS == "":
		return errors.New("netns: a namespace path is required")
	case len(cfg.Name) >= ifNameSize:
		return fmt.Errorf("name: %q is longer than %d bytes", cfg.Name, ifNameSize-1)
	case cfg.MAC != nil && (len(cfg.MAC) != 6 || cfg.MAC[0]&1 != 0):
		return fmt.Errorf("mac: %s is not a unicast Ethernet address", cfg.MAC)
	case !cfg.Addr.IsValid() && !cfg.Handoff:
		return errors.New("addr: an address with a subnet length is required")
	case cfg.MTU < 68 || cfg.MTU > maxIPLen-ethHdrLen:
		return fmt.Errorf("mtu: %d is outside 68..%d", cfg.MTU, maxIPLen-ethHdrLen)
	case cfg.Batch < 1 || cfg.Batch > maxBatch:
		return fmt.Errorf("batch: %d is outside 1..%d", cfg.Batch, maxBatch)
	case cfg.GSOMaxSegs < 0 || cfg.GSOMaxSegs > 65535:
		return fmt.Errorf("gso max segs: %d is outside 0..65535", cfg.GSOMaxSegs)
	}
	if gw := cfg.Gateway; gw.IsValid() && (!cfg.Addr.Masked().Contains(gw) || gw == cfg.Addr.Addr()) {
		return fmt.Errorf("gateway: %s is not another address in %s", gw, cfg.Addr.Masked())
	}
	return nil
}
