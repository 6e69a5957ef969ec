//go:build !linux

package cniplugin

import (
	"fmt"
	"runtime"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// errNeedsLinux is why CHECK cannot look into a container here.
var errNeedsLinux = fmt.Errorf("network namespaces need Linux; the CNI plugin cannot work on %s", runtime.GOOS)

// inNetNS returns errNeedsLinux.
func inNetNS(string, func() error) error { return errNeedsLinux }

// nsExists reports false: there are no network namespaces here.
func nsExists(string) bool { return false }

// checkLink returns errNeedsLinux.
func checkLink(string, []*current.IPConfig, []*types.Route) error { return errNeedsLinux }
