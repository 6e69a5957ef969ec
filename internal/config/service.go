package config

// Services: a name of a network whose endpoints (those named or aliased
// like it) share a virtual IP. Its rules (CheckService, ServiceClash) are
// in rules.go; the config file, the API, the CLI and the replicated log
// call them.

// Service is one [[service]] table.
type Service struct {
	// Network is the service's network (required).
	Network string
	// Name is the name (or alias) of the service's endpoints, a DNS label
	// (required).
	Name string
	// VIP gives the service a virtual IP from the network's IPAM: Name
	// resolves to it, tasks.Name to every endpoint, and connections to it
	// spread over the endpoints (default true). Without it Name resolves
	// to every endpoint (DNS round robin) and so does tasks.Name.
	VIP bool
}

// TasksPrefix is what DNS puts before a service's name for its endpoints.
const TasksPrefix = "tasks."

type rawService struct {
	Network any `toml:"network"`
	Name    any `toml:"name"`
	VIP     any `toml:"vip"`
}

func (v *validator) service(field string, rs *rawService, s *Service) {
	s.Network, _ = v.str(field+".network", rs.Network, true)
	s.Name, _ = v.label(field+".name", rs.Name)
	s.VIP = true
	if b, ok := v.boolean(field+".vip", rs.VIP); ok {
		s.VIP = b
	}
}

// services checks the services against the networks and each other.
func (v *validator) services() {
	for i := range v.c.Services {
		s := &v.c.Services[i]
		field := indexPath("service", i)
		if s.Network != "" {
			if err := CheckServiceNetwork(s, v.c.Networks); err != nil {
				v.errorf(field+".network", "%v", err)
			}
		}
		for j := range i {
			if err := ServiceClash(s, &v.c.Services[j]); err != nil && s.Name != "" {
				v.errorf(field+".name", "%v by service[%d]", err, j)
				break
			}
		}
	}
}
