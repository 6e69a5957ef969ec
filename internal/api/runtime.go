package api

import (
	"context"
	"errors"
)

// NetworkSpec asks for a network to be created (POST /v1/networks). Zero
// fields take defaults: VNI the lowest free one from 256, Gateway the
// subnet's first host address, MTU the underlay MTU minus the overhead.
type NetworkSpec struct {
	Name      string `json:"name"`
	Subnet    string `json:"subnet"`
	Gateway   string `json:"gateway,omitempty"`
	VNI       uint32 `json:"vni,omitempty"`
	MTU       int    `json:"mtu,omitempty"`
	Encrypted bool   `json:"encrypted,omitempty"`
	// Egress nil means true.
	Egress *bool `json:"egress,omitempty"`
}

// Network describes one network (GET /v1/networks, /v1/networks/NAME).
type Network struct {
	Name      string `json:"name"`
	VNI       uint32 `json:"vni"`
	Subnet    string `json:"subnet"`
	Gateway   string `json:"gateway"`
	MTU       int    `json:"mtu"`
	Encrypted bool   `json:"encrypted"`
	Egress    bool   `json:"egress"`
	// Source is "config" for networks of the config file, "api" for
	// networks created through the API (on any host: they replicate).
	Source string `json:"source"`
	// Endpoints counts the network's endpoints on this host.
	Endpoints int `json:"endpoints"`
	// Error says why this host does not carry the network, e.g. "not
	// applied on h2: no private_key_file"; empty when it does.
	Error string `json:"error,omitempty"`
	// Members lists the network's endpoints on every host: this host's
	// own and those other hosts announce by gossip, sorted by name and
	// host. Only GET /v1/networks/NAME (network inspect) fills it.
	Members []Endpoint `json:"members,omitempty"`
}

// AttachRequest attaches a container's namespace to a network
// (POST /v1/endpoints).
type AttachRequest struct {
	Network string `json:"network"`
	// Name is the container's name in DNS; unique within the network
	// across the cluster: a name another host's endpoint holds there is
	// refused (ErrConflict, naming that host). Aliases may be shared.
	Name string `json:"name"`
	// NetNS is the path of the container's network namespace, e.g.
	// /proc/PID/ns/net or /var/run/netns/NAME.
	NetNS string `json:"netns"`
	// IfName defaults to eth0.
	IfName  string   `json:"ifname,omitempty"`
	Address string   `json:"address,omitempty"` // IPv4 address; allocated if empty
	MAC     string   `json:"mac,omitempty"`     // derived if empty
	Aliases []string `json:"aliases,omitempty"`
	// ContainerID identifies the attachment for a later detach by the
	// runtime (OCI container id, CNI_CONTAINERID).
	ContainerID string `json:"container_id,omitempty"`
	// Handoff makes the interface in the daemon's own namespace, named
	// IfName (which must start with "vxw") and unconfigured, for the
	// runtime to move into the container and configure (Docker); NetNS
	// must then be empty.
	Handoff bool `json:"handoff,omitempty"`
	// TAPFD says that the request carries, as SCM_RIGHTS on the unix
	// socket, the descriptor of a TAP named IfName that the caller made
	// in NetNS (a rootless container's namespace, which the daemon may
	// not enter): the daemon serves it and the caller configures the link
	// from the answer (Client.AttachTAP).
	TAPFD bool `json:"tap_fd,omitempty"`
}

// DetachRequest detaches an endpoint (DELETE /v1/endpoints). Either
// Network and Name, or ContainerID (optionally with Network and IfName
// to pick one of several attachments) identify it. Detaching something
// that is not attached succeeds: runtimes retry.
type DetachRequest struct {
	Network     string `json:"network,omitempty"`
	Name        string `json:"name,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	IfName      string `json:"ifname,omitempty"`
}

// Endpoint describes an attached endpoint (GET /v1/endpoints and the
// answer to an attach). An endpoint of another host (GET
// /v1/endpoints?all=1, network inspect's Members) has Source "gossip" and
// only Network, Name, Address, MAC, Aliases and Host set.
type Endpoint struct {
	Network     string   `json:"network"`
	Name        string   `json:"name"`
	NetNS       string   `json:"netns"`
	IfName      string   `json:"ifname"`
	Address     string   `json:"address"` // CIDR
	Gateway     string   `json:"gateway"`
	MAC         string   `json:"mac"`
	MTU         int      `json:"mtu"`
	Aliases     []string `json:"aliases,omitempty"`
	ContainerID string   `json:"container_id,omitempty"`
	// DNS is what the container's resolver should use.
	DNS DNS `json:"dns"`
	// Source is "config" or "api" ("gossip" for another host's).
	Source string `json:"source"`
	// DefaultRoute is whether this interface holds the container's
	// default route: the first network a container is attached to does,
	// the others carry their subnet route only.
	DefaultRoute bool `json:"default_route"`
	// Error says why a config file endpoint could not be attached; such
	// an endpoint is listed but has no interface.
	Error string `json:"error,omitempty"`
	// Host is the name of the host the endpoint is attached on.
	Host string `json:"host,omitempty"`
}

// DNS is a container's resolver configuration.
type DNS struct {
	Nameservers []string `json:"nameservers"`
	Search      []string `json:"search"`
}

// Errors a Backend returns; the server maps them to HTTP status codes
// (404, 409, 400) and clients map the codes back, so errors.Is works on
// both sides of the socket.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid request")
)

// Runtime is the part of the daemon that runtimes and the CLI change.
// Implementations are safe for concurrent use. Errors wrap ErrNotFound,
// ErrConflict or ErrInvalid where one applies, with a message that says
// what is wrong.
type Runtime interface {
	Networks() []Network
	Network(name string) (Network, error)
	// CreateNetwork creates a network on every host (it replicates).
	CreateNetwork(ctx context.Context, spec NetworkSpec) (Network, error)
	// RemoveNetwork removes an API-created network everywhere; it fails
	// with ErrConflict while endpoints are attached to it on this host,
	// and with ErrInvalid for networks of the config file.
	RemoveNetwork(ctx context.Context, name string) error
	// Endpoints lists this host's endpoints.
	Endpoints() []Endpoint
	// AllEndpoints lists the endpoints of every network this host
	// carries, on every host (GET /v1/endpoints?all=1).
	AllEndpoints() []Endpoint
	Attach(ctx context.Context, req AttachRequest) (Endpoint, error)
	Detach(ctx context.Context, req DetachRequest) error
}

// ShortIDLen is how many characters of a container id stand in for its
// name when the runtime gives none, as docker and podman show ids.
const ShortIDLen = 12

// ShortID returns the first ShortIDLen characters of a container id, the
// name every runtime path (OCI hook, CNI plugin) gives a container that has
// no name of its own, so one container gets one name whichever way it is
// attached.
func ShortID(id string) string {
	if len(id) > ShortIDLen {
		return id[:ShortIDLen]
	}
	return id
}
