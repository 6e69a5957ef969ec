package hook

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vxwire/vxwire/internal/api"
)

// Timeout bounds one hook invocation's talk with the daemon: longer than
// the daemon's own bound on an attach. Runtimes may set a shorter hook
// timeout of their own in config.json.
const Timeout = api.ClientTimeout

// Usage is the command line Main accepts, after the word oci-hook.
const Usage = "vxwire oci-hook [--socket PATH] [createRuntime|prestart|poststop] < STATE"

// Exit codes of Main. The runtime aborts the container on any non-zero
// code at createRuntime and prestart, and logs it at poststop.
const (
	ExitOK    = 0
	ExitFail  = 1 // the state is unusable or the daemon refused or is unreachable
	ExitUsage = 2 // the command line is wrong
)

// Main runs `vxwire oci-hook`: args are the words after oci-hook, stdin
// carries the OCI state, and errors and warnings go to stderr. Without a
// stage argument the stage is inferred from the state (State.InferStage),
// so one hooks.d entry serves createRuntime and poststop. The socket is
// --socket, else $VXWIRE_SOCKET, else the default path. It returns the
// process exit code.
//
// tm makes TAPs for a hook that runs inside a rootless runtime's user
// namespace (see rootless.go); nil leaves every TAP to the daemon.
func Main(args []string, stdin io.Reader, stderr io.Writer, tm TAPMaker) int {
	fs := flag.NewFlagSet("oci-hook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", "", "the daemon's API socket")
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stderr, "usage: %s\n", Usage)
		return ExitOK
	case err != nil:
		fmt.Fprintf(stderr, "vxwire oci-hook: %v\nusage: %s\n", err, Usage)
		return ExitUsage
	case fs.NArg() > 1:
		fmt.Fprintf(stderr, "vxwire oci-hook: want at most one stage\nusage: %s\n", Usage)
		return ExitUsage
	}
	var stage Stage
	if fs.NArg() == 1 {
		if stage, err = ParseStage(fs.Arg(0)); err != nil {
			fmt.Fprintf(stderr, "vxwire oci-hook: %v\nusage: %s\n", err, Usage)
			return ExitUsage
		}
	}
	st, err := ParseState(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "vxwire oci-hook: %v\n", err)
		return ExitFail
	}
	if stage == "" {
		stage = st.InferStage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	h := &Hook{Client: api.NewClient(api.SocketPath(*socket)), Warn: stderr, TAP: tm, Rootless: rootlessRuntime()}
	if err := h.Run(ctx, stage, st); err != nil {
		fmt.Fprintf(stderr, "vxwire oci-hook %s: %v\n", stage, err)
		return ExitFail
	}
	return ExitOK
}
