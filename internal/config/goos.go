package config

// checkOS refuses what a daemon built for goos (runtime.GOOS) cannot
// serve: every container endpoint and the Docker plugin off Linux. It
// takes the system as a parameter so the rule is tested on any system.
func (c *Config) checkOS(goos string) []*Error {
	var errs []*Error
	if c.Host.DockerPlugin != "" {
		if err := CheckDockerPluginOS(goos); err != nil {
			errs = append(errs, c.Errorf("host.docker_plugin", "%v", err))
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
