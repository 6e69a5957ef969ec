package main

import (
	"io"
	"os"

	"github.com/vxwire/vxwire/internal/cniplugin"
	"github.com/vxwire/vxwire/internal/hook"
)

// runtimeMode runs the runtime-facing modes: the CNI plugin when
// CNI_COMMAND is set, and `vxwire oci-hook`. It reports whether args
// named one of them, and the exit code.
func runtimeMode(args []string, stdin io.Reader, stderr io.Writer) (code int, ok bool) {
	switch {
	case os.Getenv("CNI_COMMAND") != "":
		cniplugin.Main() // exits the process on error
		return exitOK, true
	case len(args) > 0 && args[0] == tapHelperCmd:
		return tapHelper(args[1:], stdin, stderr), true
	case len(args) > 0 && args[0] == "oci-hook":
		return hook.Main(args[1:], stdin, stderr, hookTAP{}), true
	}
	return exitOK, false
}
