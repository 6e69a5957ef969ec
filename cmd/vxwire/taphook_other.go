//go:build !linux

package main

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// tapHelperCmd is the hidden subcommand's name.
const tapHelperCmd = "tap-helper"

// errTAPNeedsLinux is why the hook and the TAP helper cannot work here.
var errTAPNeedsLinux = fmt.Errorf("container endpoints (TAP in a network namespace) need Linux; on %s, use a host endpoint, SOCKS5 or [[forward]]", runtime.GOOS)

// tapHelper fails: there is no namespace to make a TAP in.
func tapHelper(_ []string, _ io.Reader, stderr io.Writer) int {
	fmt.Fprintf(stderr, "vxwire tap-helper: %v\n", errTAPNeedsLinux)
	return exitFail
}

// newNSHelper returns nil: no namespace to reach here.
func newNSHelper() tap.NSHelper { return nil }

// hookTAP refuses to make TAPs (hook.TAPMaker).
type hookTAP struct{}

// Open returns errTAPNeedsLinux.
func (hookTAP) Open(string, string) (*os.File, error) { return nil, errTAPNeedsLinux }

// Configure returns errTAPNeedsLinux.
func (hookTAP) Configure(string, api.Endpoint) error { return errTAPNeedsLinux }
