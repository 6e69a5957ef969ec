// Package hook is vxwire's OCI runtime hook: `vxwire oci-hook STAGE`,
// called by runc, crun or podman with the container's state on standard
// input. At createRuntime (or prestart) it asks the daemon to attach the
// container's network namespace to the network named by the annotation
// vxwire.network and points the container's resolver at the gateway; at
// poststop it asks the daemon to detach the container. A container without
// that annotation is left alone, so a global hooks.d entry is harmless.
//
// The hook keeps no state: it is a thin client of the daemon's unix-socket
// API and exits after one call.
package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// Annotations the hook reads from the container's config.json.
const (
	// AnnotationNetwork names the network to attach to, or several
	// separated by commas (blue,red): one interface each, eth0, eth1, …,
	// the first with the default route. Without it the hook does nothing.
	AnnotationNetwork = "vxwire.network"
	// AnnotationName is the container's name in DNS. Default: the
	// hostname of config.json, else the container id (its first 12
	// characters when it is longer than a DNS label).
	AnnotationName = "vxwire.name"
	// AnnotationIP asks for an IPv4 address; empty lets the daemon
	// allocate one. With several networks it is a comma-separated list in
	// the same order, where an empty item lets the daemon allocate.
	AnnotationIP = "vxwire.ip"
)

// Client is the part of the daemon's API the hook uses. *api.Client
// implements it; tests use a fake.
type Client interface {
	Attach(ctx context.Context, req api.AttachRequest) (api.Endpoint, error)
	Detach(ctx context.Context, req api.DetachRequest) error
}

// Hook runs hook invocations against a daemon. The zero value is not
// usable: Client must be set. A Hook holds no state between calls and is
// safe for concurrent use if its Client is.
type Hook struct {
	// Client reaches the daemon.
	Client Client
	// ProcRoot is where procfs is mounted; "" means /proc.
	ProcRoot string
	// Warn receives problems that do not fail the hook, one line each;
	// nil discards them.
	Warn io.Writer
	// Rootless makes the hook create each TAP itself and pass it to the
	// daemon (see rootless.go), when TAP is set and Client can pass it.
	Rootless bool
	// TAP makes TAPs in rootless mode.
	TAP TAPMaker
}

// Run performs stage for the container described by st: attach at
// createRuntime and prestart, detach at poststop. It does nothing for a
// container without the vxwire.network annotation.
func (h *Hook) Run(ctx context.Context, stage Stage, st State) error {
	networks := splitList(st.Annotations[AnnotationNetwork])
	if len(networks) == 0 {
		return nil
	}
	if stage == StagePoststop {
		return h.detach(ctx, networks, st)
	}
	return h.attach(ctx, networks, st)
}

// splitList splits a comma-separated annotation, dropping spaces.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// attach attaches the container to each network in order, as eth0, eth1,
// …; the first owns the default route. On error the networks attached so
// far are detached again.
func (h *Hook) attach(ctx context.Context, networks []string, st State) error {
	if st.Pid <= 0 {
		return fmt.Errorf("the state of container %s has no pid: attach runs at createRuntime or prestart, not poststop", st.ID)
	}
	bc, err := readBundle(st.Bundle)
	if err != nil {
		return err
	}
	for _, n := range networks {
		if err := config.CheckLabel(n); err != nil {
			return fmt.Errorf("container %s: annotation %s: network %q: %v", st.ID, AnnotationNetwork, n, err)
		}
	}
	ips := strings.Split(st.Annotations[AnnotationIP], ",")
	if len(ips) > len(networks) {
		return fmt.Errorf("container %s: annotation %s lists %d addresses for %d networks", st.ID, AnnotationIP, len(ips), len(networks))
	}
	name := containerName(st, bc)
	var ep api.Endpoint
	for i, network := range networks {
		req := api.AttachRequest{
			Network:     network,
			Name:        name,
			NetNS:       h.procPath(st.Pid, "ns/net"),
			ContainerID: st.ID,
		}
		if i > 0 {
			req.IfName = "eth" + strconv.Itoa(i) // eth0 is the daemon's default
		}
		if i < len(ips) {
			req.Address = strings.TrimSpace(ips[i])
		}
		if ep, err = h.attachOne(ctx, req); err != nil {
			if i > 0 {
				h.detach(ctx, networks[:i], st)
			}
			return fmt.Errorf("cannot attach container %s to network %q as %q: %w", st.ID, network, req.Name, err)
		}
	}
	// The last answer lists the DNS settings of every network attached.
	if bc.resolvReadOnly() {
		h.warnf("container %s keeps its own resolv.conf, so names on network %q do not resolve there: its config makes /etc/resolv.conf read-only", st.ID, networks[0])
		return nil
	}
	if err := h.writeResolvConf(st.Pid, bc.rootfs(st.Bundle), ep); err != nil {
		h.warnf("container %s keeps its own resolv.conf, so names on network %q do not resolve there: %v", st.ID, networks[0], err)
	}
	return nil
}

func (h *Hook) detach(ctx context.Context, networks []string, st State) error {
	var errs []error
	for _, network := range networks {
		err := h.Client.Detach(ctx, api.DetachRequest{Network: network, ContainerID: st.ID})
		if err != nil && !errors.Is(err, api.ErrNotFound) {
			errs = append(errs, fmt.Errorf("cannot detach container %s from network %q: %w", st.ID, network, err))
		}
	}
	return errors.Join(errs...)
}

func (h *Hook) procPath(pid int, name string) string {
	root := h.ProcRoot
	if root == "" {
		root = "/proc"
	}
	return filepath.Join(root, strconv.Itoa(pid), name)
}

func (h *Hook) warnf(format string, args ...any) {
	if h.Warn != nil {
		fmt.Fprintf(h.Warn, "vxwire oci-hook: warning: "+format+"\n", args...)
	}
}

// bundleConfig is the part of the bundle's config.json the hook reads.
type bundleConfig struct {
	Hostname string `json:"hostname"`
	Root     struct {
		Path     string `json:"path"`
		Readonly bool   `json:"readonly"`
	} `json:"root"`
	Mounts []struct {
		Destination string   `json:"destination"`
		Options     []string `json:"options"`
	} `json:"mounts"`
}

// resolvReadOnly reports whether the config makes the container's
// /etc/resolv.conf read-only: the last mount on /etc/resolv.conf or /etc
// has the option ro, or no such mount exists and the root is read-only.
// Runtimes apply these after createRuntime hooks (crun remounts a read-only
// bind mount later, runc the root), so the hook asks the config, not the
// file system, to respect the container's intent; writing through such a
// bind mount would change its source on the host.
func (bc bundleConfig) resolvReadOnly() bool {
	for i := len(bc.Mounts) - 1; i >= 0; i-- {
		m := bc.Mounts[i]
		if d := filepath.Clean(m.Destination); d == "/etc/resolv.conf" || d == "/etc" {
			return slices.Contains(m.Options, "ro")
		}
	}
	return bc.Root.Readonly
}

// rootfs returns the absolute path of the container's root file system,
// or "" if the config names none.
func (bc bundleConfig) rootfs(bundle string) string {
	switch p := bc.Root.Path; {
	case p == "":
		return ""
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	default:
		return filepath.Join(bundle, p)
	}
}

// readBundle reads BUNDLE/config.json. An empty bundle gives a zero
// config.
func readBundle(bundle string) (bundleConfig, error) {
	var bc bundleConfig
	if bundle == "" {
		return bc, nil
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return bc, fmt.Errorf("cannot read the bundle's config: %w", err)
	}
	if err := json.Unmarshal(b, &bc); err != nil {
		return bc, fmt.Errorf("cannot decode %s: %w", filepath.Join(bundle, "config.json"), err)
	}
	return bc, nil
}

// containerName picks the container's DNS name: the annotation, else the
// hostname, else the short id (api.ShortID, as the CNI plugin does).
func containerName(st State, bc bundleConfig) string {
	switch {
	case st.Annotations[AnnotationName] != "":
		return st.Annotations[AnnotationName]
	case bc.Hostname != "":
		return bc.Hostname
	}
	return api.ShortID(st.ID)
}
