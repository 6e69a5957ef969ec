package dockerplugin

// Request and response bodies of Docker's plugin protocol, as libnetwork's
// remote network driver (docs/remote.md) and remote IPAM driver
// (docs/ipam.md) send and expect them. Field names are Docker's.

// errResponse is every refusal: Docker shows it to the user. The network
// driver protocol reads Err, the IPAM protocol Error; both carry the
// message.
type errResponse struct {
	Err   string
	Error string
}

type activateResponse struct {
	Implements []string
}

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

type ipamData struct {
	AddressSpace string
	Pool         string
	Gateway      string
	AuxAddresses map[string]string
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type networkRequest struct {
	NetworkID string
}

type endpointInterface struct {
	Address     string
	AddressIPv6 string
	MacAddress  string
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Options    map[string]any
	Interface  *endpointInterface
}

type createEndpointResponse struct {
	Interface *endpointInterface `json:",omitempty"`
}

type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]any
}

type interfaceName struct {
	SrcName   string
	DstPrefix string
}

type joinResponse struct {
	InterfaceName interfaceName
	Gateway       string `json:",omitempty"`
}

type operInfoResponse struct {
	Value map[string]any
}

type ipamCapabilitiesResponse struct {
	RequiresMACAddress bool
}

type addressSpacesResponse struct {
	LocalDefaultAddressSpace  string
	GlobalDefaultAddressSpace string
}

type requestPoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

type requestPoolResponse struct {
	PoolID string
	Pool   string
	Data   map[string]string
}

type releasePoolRequest struct {
	PoolID string
}

type requestAddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

type requestAddressResponse struct {
	Address string
	Data    map[string]string
}

type releaseAddressRequest struct {
	PoolID  string
	Address string
}

// Names Docker uses in options.
const (
	optGeneric     = "com.docker.network.generic"
	optInternal    = "com.docker.network.internal"
	optIPv6        = "com.docker.network.enable_ipv6"
	optMTU         = "com.docker.network.driver.mtu"
	optEncrypted   = "encrypted"
	optAddressType = "RequestAddressType"
	gatewayType    = "com.docker.network.gateway"
)
