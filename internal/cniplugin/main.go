package cniplugin

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vxwire/vxwire/internal/api"
)

// Versions are the CNI spec versions the plugin speaks. GC and STATUS
// need 1.1.0.
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// About is printed on standard error when the binary runs as a plugin
// without CNI_COMMAND.
const About = "vxwire CNI plugin: attaches containers to vxwire overlay networks through the daemon's socket"

// Main runs one CNI command from the environment and standard input, as
// skel.PluginMainFuncs does: it prints the result or a CNI error as JSON
// to standard output and exits the process with status 1 on error.
func Main() {
	p := &Plugin{NewClient: func(socket string) Client { return api.NewClient(socket) }}
	skel.PluginMainFuncs(p.Funcs(), Versions, About)
}
