package hook

// Rootless containers. A rootless runtime (podman run by a user, runc in
// a user namespace) runs its hooks inside its own user namespace, as that
// namespace's root: the hook holds CAP_NET_ADMIN over the container's
// network namespace, which the user's daemon, outside, does not. So the
// hook makes the TAP there itself, passes its descriptor to the daemon
// over the API socket (SCM_RIGHTS), and configures the link from the
// daemon's answer:
//
//	hook (runtime's userns)                      daemon (the user)
//	TAPMaker.Open(netns, eth0) ── AttachTAP ───▶ allocate, adopt the fd
//	TAPMaker.Configure(address, MAC, MTU, route) ◀── endpoint
//
// The hook takes this path when it runs in a user namespace other than
// the initial one (podman), or without CAP_NET_ADMIN (runc started by the
// user: its hooks run as the user, outside the container's user
// namespace, and the TAPMaker joins that namespace through a helper).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// TAPMaker makes and configures a TAP in a container's namespace from the
// hook's own process. cmd/vxwire supplies the one of package tap; tests a
// fake.
type TAPMaker interface {
	// Open makes a TAP named ifname in the namespace at netns, down and
	// unconfigured, and returns its descriptor.
	Open(netns, ifname string) (*os.File, error)
	// Configure sets the link ep.IfName in netns up with ep's MAC, MTU,
	// address and, when ep.DefaultRoute, the default route via ep.Gateway.
	Configure(netns string, ep api.Endpoint) error
}

// TAPClient is a Client that can pass a TAP with an attach request
// (api.Client does).
type TAPClient interface {
	AttachTAP(ctx context.Context, req api.AttachRequest, tap *os.File) (api.Endpoint, error)
}

// attachOne attaches req through the daemon, or, for a hook in a rootless
// runtime, makes the TAP here and passes it.
func (h *Hook) attachOne(ctx context.Context, req api.AttachRequest) (api.Endpoint, error) {
	tc, ok := h.Client.(TAPClient)
	if !h.Rootless || h.TAP == nil || !ok {
		return h.Client.Attach(ctx, req)
	}
	ifname := req.IfName
	if ifname == "" {
		ifname = config.DefaultIfName
	}
	f, err := h.TAP.Open(req.NetNS, ifname)
	if err != nil {
		return api.Endpoint{}, fmt.Errorf("rootless runtime: %w", err)
	}
	defer f.Close() // the daemon holds its own copy
	ep, err := tc.AttachTAP(ctx, req, f)
	if err != nil {
		return api.Endpoint{}, err
	}
	if err := h.TAP.Configure(req.NetNS, ep); err != nil {
		h.Client.Detach(ctx, api.DetachRequest{Network: req.Network, Name: req.Name})
		return api.Endpoint{}, fmt.Errorf("rootless runtime: %w", err)
	}
	return ep, nil
}

// InUserNS reports whether the process runs in a user namespace other
// than the initial one, from the text of /proc/self/uid_map: the initial
// namespace maps every id onto itself ("0 0 4294967295").
func InUserNS(uidMap []byte) bool {
	f := strings.Fields(string(bytes.TrimSpace(uidMap)))
	return len(f) != 3 || f[0] != "0" || f[1] != "0" || f[2] != "4294967295"
}

// rootlessRuntime reports whether the hook serves a rootless runtime: it
// runs in a user namespace other than the initial one, or without
// CAP_NET_ADMIN. A system without /proc (not Linux) has neither.
func rootlessRuntime() bool {
	if b, err := os.ReadFile("/proc/self/uid_map"); err == nil && InUserNS(b) {
		return true
	}
	status, err := os.ReadFile("/proc/self/status")
	return err == nil && !config.HasCap(status, config.CapNetAdmin)
}
