package config

// Rootless mode: the daemon runs as an ordinary user without capabilities.
// It is chosen when the file says host.rootless = true, or when the file
// leaves the key out and the process lacks CAP_NET_ADMIN; rootless = false
// keeps the privileged defaults whatever the capabilities. In rootless
// mode:
//
//	state_dir   default $XDG_STATE_HOME/vxwire (~/.local/state/vxwire)
//	api_socket  default $XDG_RUNTIME_DIR/vxwire/vxwire.sock
//	UAPI socket         $XDG_RUNTIME_DIR/wireguard/NAME.sock
//	ports       port, wg_port, gossip_port, raft_port, metrics >= 1024
//	paths       state_dir and the socket directories must be writable
//	docker      docker_plugin is refused (it makes TAPs in the daemon's
//	            own namespace, which needs CAP_NET_ADMIN)
//	api_group   must be a group the user is in (chown needs it)
//
// Container endpoints stay allowed: a namespace of the user's own user
// namespace works, any other one fails at attach with an error naming the
// capability it lacks, and the daemon keeps running.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goos "runtime"
	"slices"
	"strconv"
	"strings"
)

// CapNetAdmin is CAP_NET_ADMIN's bit in the capability sets (HasCap).
const CapNetAdmin = 12

// system is what rootless mode reads from the process: its capabilities,
// its environment and its user.
type system struct {
	netAdmin bool                // the effective set holds CAP_NET_ADMIN
	getenv   func(string) string // the environment
	uid      int                 // the real user id, for messages
	groups   []int               // the process's group ids (primary and supplementary)
	// writable reports why the directory dir (or the nearest existing
	// directory above it) cannot get new entries, or nil.
	writable func(dir string) error
}

// currentSystem describes the running process.
func currentSystem() system {
	status, _ := os.ReadFile("/proc/self/status")
	groups, _ := os.Getgroups()
	groups = append(groups, os.Getegid())
	return system{netAdmin: HasCap(status, CapNetAdmin), getenv: laptopEnv(goos.GOOS, os.Getenv, os.TempDir()), uid: os.Getuid(), groups: groups, writable: writableDir}
}

// HasCap reports whether the CapEff line of a /proc/PID/status text holds
// capability bit; a text without one (no /proc: not Linux) holds none.
func HasCap(status []byte, bit uint) bool {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		set, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		return err == nil && bit < 64 && set&(1<<bit) != 0
	}
	return false
}

// loadRootless decides rootless mode and, in it, moves the defaults to the
// user's directories and checks ports and paths against what an
// unprivileged process may do.
func (c *Config) loadRootless(sys system) []*Error {
	h := &c.Host
	spelled := func(f string) bool { _, ok := c.lines[f]; return ok }
	if !spelled("host.rootless") {
		h.Rootless = !sys.netAdmin
	}
	if !h.Rootless {
		return nil
	}
	var errs []*Error
	errorf := func(field, format string, args ...any) {
		errs = append(errs, c.Errorf(field, format, args...))
	}
	runtime := absEnv(sys.getenv, "XDG_RUNTIME_DIR")
	why := fmt.Sprintf("rootless mode (uid %d)", sys.uid)
	if !spelled("host.state_dir") {
		if dir := stateHome(sys.getenv); dir != "" {
			h.StateDir = filepath.Join(dir, "vxwire")
		} else {
			errorf("host.state_dir", "%s keeps state in $XDG_STATE_HOME/vxwire or ~/.local/state/vxwire, but neither XDG_STATE_HOME nor HOME is set to an absolute path; set one, or set state_dir", why)
		}
	}
	if !spelled("host.api_socket") {
		switch s := filepath.Join(runtime, "vxwire", "vxwire.sock"); {
		case runtime == "":
			errorf("host.api_socket", "%s puts the API socket in $XDG_RUNTIME_DIR, which is not set to an absolute path; set XDG_RUNTIME_DIR (a directory only you may write, such as /run/user/%d), or set api_socket", why, sys.uid)
		case len(s) > maxSocketPath:
			errorf("host.api_socket", "%s is %d bytes long; unix socket paths are limited to %d; set api_socket", s, len(s), maxSocketPath)
		default:
			h.APISocket = s
		}
	}
	if h.PrivateKeyFile != "" {
		if runtime == "" {
			errorf("host.private_key_file", "%s puts the WireGuard UAPI socket in $XDG_RUNTIME_DIR/wireguard, which needs XDG_RUNTIME_DIR set to an absolute path", why)
		} else {
			h.UAPIDir = filepath.Join(runtime, "wireguard")
		}
	}
	ports := []struct {
		field string
		port  uint16
	}{{"host.port", h.Port}, {"host.gossip_port", h.GossipPort}, {"host.raft_port", h.RaftPort}, {"host.metrics", h.Metrics.Port()}}
	if h.PrivateKeyFile != "" {
		ports = append(ports, struct {
			field string
			port  uint16
		}{"host.wg_port", h.WGPort})
	}
	for _, p := range ports {
		if err := CheckRootlessPort(p.port); err != nil {
			errorf(p.field, "%v", err)
		}
	}
	if h.APIGID >= 0 && !slices.Contains(sys.groups, h.APIGID) {
		errorf("host.api_group", "%s can give the API socket only to a group the user is in, and it is not in %s", why, h.APIGroup)
	}
	if h.DockerPlugin != "" {
		errorf("host.docker_plugin", "%s cannot serve the Docker plugin: it creates TAP devices in the daemon's own namespace, which needs CAP_NET_ADMIN; remove the key, or run the daemon as root", why)
	}
	for _, d := range []struct{ field, dir string }{
		{"host.state_dir", h.StateDir},
		{"host.api_socket", filepath.Dir(h.APISocket)},
		{"host.private_key_file", h.UAPIDir},
	} {
		if d.dir == "" || reported(errs, d.field) {
			continue
		}
		if err := sys.writable(d.dir); err != nil {
			errorf(d.field, "%s cannot write %s: %v; use a directory you own, or leave the key out for the default under your home or $XDG_RUNTIME_DIR", why, d.dir, err)
		}
	}
	return errs
}

// absEnv returns the environment variable key when it is an absolute path.
func absEnv(getenv func(string) string, key string) string {
	if v := getenv(key); filepath.IsAbs(v) {
		return filepath.Clean(v)
	}
	return ""
}

// stateHome is $XDG_STATE_HOME, or ~/.local/state (the XDG base directory
// default), or "" when neither can be found.
func stateHome(getenv func(string) string) string {
	if d := absEnv(getenv, "XDG_STATE_HOME"); d != "" {
		return d
	}
	if home := absEnv(getenv, "HOME"); home != "" {
		return filepath.Join(home, ".local", "state")
	}
	return ""
}

// errNoDir is what nearestDir reports when no directory above a path
// exists (a relative path).
var errNoDir = errors.New("no existing directory above it")

// nearestDir returns dir or its nearest ancestor that exists, which is
// where the daemon would have to create what is missing.
func nearestDir(dir string) (string, error) {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		switch {
		case err == nil && fi.IsDir():
			return d, nil
		case err == nil:
			return "", fmt.Errorf("%s is not a directory", d)
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("cannot stat %s: %w", d, unwrapPath(err))
		}
		if d == filepath.Dir(d) {
			return "", errNoDir
		}
	}
}

// reported reports whether errs holds an error about field already.
func reported(errs []*Error, field string) bool {
	for _, e := range errs {
		if e.Field == field {
			return true
		}
	}
	return false
}
