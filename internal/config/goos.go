package config

import "path/filepath"

// checkOS refuses what a daemon built for goos (runtime.GOOS) cannot
// serve: every container endpoint and the Docker plugin off Linux, and
// an API group on Windows. It takes the system as a parameter so the
// rule is tested on any system.
func (c *Config) checkOS(goos string) []*Error {
	var errs []*Error
	if c.Host.DockerPlugin != "" {
		if err := CheckDockerPluginOS(goos); err != nil {
			errs = append(errs, c.Errorf("host.docker_plugin", "%v", err))
		}
	}
	if c.Host.APIGroup != "" {
		if err := CheckAPIGroupOS(goos); err != nil {
			errs = append(errs, c.Errorf("host.api_group", "%v", err))
		}
	}
	for i, ep := range c.Endpoints {
		if ep.IsHost() {
			continue
		}
		if err := CheckContainerEndpointOS(goos); err != nil {
			errs = append(errs, c.Errorf(indexPath("endpoint", i)+".netns", "%v", err))
		}
	}
	return errs
}

// laptopEnv is getenv for rootless mode on goos: off Linux, where no
// login manager sets XDG_RUNTIME_DIR, an unset or relative one reads as
// tmp, the user's own temporary directory on macOS ($TMPDIR) and Windows
// (%TEMP%), so the API and UAPI sockets get a default there too.
func laptopEnv(goos string, getenv func(string) string, tmp string) func(string) string {
	if HasTAP(goos) {
		return getenv
	}
	return func(k string) string {
		if v := getenv(k); k != "XDG_RUNTIME_DIR" || filepath.IsAbs(v) {
			return v
		}
		return tmp
	}
}
