package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes. Scripts may rely on them.
const (
	exitOK     = 0
	exitFail   = 1 // the operation failed (bad config, daemon error)
	exitUsage  = 2 // the command line is wrong
	exitNoConn = 3 // the daemon could not be reached
)

const usage = `vxwire: a userspace VXLAN overlay for containers

Usage:
  vxwire up -c FILE [--log-level LEVEL]       run the daemon in the foreground
  vxwire config check -c FILE                 validate a config file and exit
  vxwire status [-c FILE | --socket PATH] [--json]
                                              show networks, peers, endpoints, counters
  vxwire genkey                               print a new private key (as wg genkey)
  vxwire pubkey < PRIVATE                     print the public key of a private key (as wg pubkey)
  vxwire version                              print the version

The daemon's socket is found from --socket, else -c FILE's host.api_socket,
else $VXWIRE_SOCKET, else /run/vxwire/vxwire.sock.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errUsage marks command-line errors, which exit with exitUsage.
var errUsage = errors.New("usage")

// run executes one command line and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "up":
		err = cmdUp(args[1:], stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			err = fmt.Errorf("%w: vxwire config check -c FILE", errUsage)
			break
		}
		err = cmdConfigCheck(args[2:], stdout)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "genkey":
		err = cmdGenkey(args[1:], stdout)
	case "pubkey":
		err = cmdPubkey(args[1:], stdin, stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "vxwire", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		err = fmt.Errorf("%w: unknown command %q (see vxwire help)", errUsage, args[0])
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	var ce *connError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "vxwire: %s\n", strings.TrimPrefix(err.Error(), "usage: "))
		return exitUsage
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "vxwire: %v\n", err)
		return exitNoConn
	default:
		fmt.Fprintf(stderr, "vxwire: %v\n", err)
		return exitFail
	}
}

// connError marks failures to reach the daemon.
type connError struct{ err error }

func (e *connError) Error() string { return e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// newFlags returns a FlagSet whose parse errors are usage errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}
