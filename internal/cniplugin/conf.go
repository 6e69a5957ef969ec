package cniplugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/config"
)

// NetConf is the plugin's entry in a network configuration list:
//
//	{"type": "vxwire", "network": "blue", "socket": "/run/vxwire/vxwire.sock", "ip": "10.77.0.9"}
//
// The list's "name" is the CNI network name; the container's DNS name is
// K8S_POD_NAME from CNI_ARGS (podman passes the container name there),
// else the first 12 characters of CNI_CONTAINERID. Unknown keys, "args"
// and other runtimeConfig keys are accepted and ignored.
type NetConf struct {
	types.PluginConf
	// Network is the vxwire network to attach to. Required.
	Network string `json:"network"`
	// Socket is the daemon's API socket; "" means $VXWIRE_SOCKET, else
	// the default path.
	Socket string `json:"socket,omitempty"`
	// IP asks for an IPv4 address; "" lets the daemon allocate one
	// unless runtimeConfig or CNI_ARGS ask for one.
	IP string `json:"ip,omitempty"`
	// RuntimeConfig carries the "ips" capability: the runtime's static
	// address request (podman --ip, CNI_ARGS-free).
	RuntimeConfig struct {
		IPs []string `json:"ips,omitempty"`
	} `json:"runtimeConfig,omitempty"`
}

// ParseConf decodes and validates the plugin's configuration, including
// its prevResult if there is one. Errors are *types.Error values with the
// CNI code that fits: 6 for undecodable JSON, 7 for an invalid
// configuration.
func ParseConf(b []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(b, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("cannot decode the network configuration: %v", err), "")
	}
	if conf.Network == "" {
		return nil, invalidConf(`the vxwire plugin needs "network": the vxwire network to attach to`)
	}
	if err := config.CheckLabel(conf.Network); err != nil {
		return nil, invalidConf(fmt.Sprintf(`"network": %v`, err))
	}
	if conf.IP != "" {
		if _, err := parseIPv4(conf.IP); err != nil {
			return nil, invalidConf(fmt.Sprintf(`"ip": %v`, err))
		}
	}
	for _, s := range conf.RuntimeConfig.IPs {
		if _, err := parseIPv4(s); err != nil {
			return nil, invalidConf(fmt.Sprintf(`runtimeConfig "ips": %v`, err))
		}
	}
	if conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("cannot decode prevResult: %v", err), "")
		}
	}
	return conf, nil
}

func invalidConf(msg string) error {
	return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
}

// parseIPv4 accepts an IPv4 address with or without a prefix length and
// returns the address.
func parseIPv4(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
		}
		addr = p.Addr()
	}
	if !addr.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return addr, nil
}

// parseArgs splits CNI_ARGS ("K1=V1;K2=V2") into a map. Malformed pairs
// are skipped: runtimes add keys for other plugins.
func parseArgs(s string) map[string]string {
	kv := map[string]string{}
	for _, pair := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if ok && k != "" {
			kv[k] = v
		}
	}
	return kv
}

// address returns the address to ask the daemon for: the conf's "ip",
// else the first of runtimeConfig "ips", else CNI_ARGS IP, else "".
func (c *NetConf) address(args map[string]string) (string, error) {
	s := c.IP
	if s == "" && len(c.RuntimeConfig.IPs) > 0 {
		s = c.RuntimeConfig.IPs[0]
	}
	if s == "" {
		s = args["IP"]
	}
	if s == "" {
		return "", nil
	}
	addr, err := parseIPv4(s)
	if err != nil {
		return "", invalidConf(fmt.Sprintf("static address: %v", err))
	}
	return addr.String(), nil
}

// containerName returns the DNS name for the container: K8S_POD_NAME from
// CNI_ARGS, else the short container id.
func containerName(containerID string, args map[string]string) string {
	if n := args["K8S_POD_NAME"]; n != "" {
		return n
	}
	return api.ShortID(containerID)
}
