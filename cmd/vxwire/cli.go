package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/vxwire/vxwire/internal/api"
)

// Exit codes. Scripts may rely on them; usage lists them.
const (
	exitOK       = 0
	exitFail     = 1 // the operation failed (bad config, daemon error)
	exitUsage    = 2 // the command line is wrong
	exitNoConn   = 3 // the daemon could not be reached
	exitNotFound = 4 // the daemon has no such network or endpoint
	exitConflict = 5 // the daemon refused: name, VNI, subnet or address taken, or network in use
)

const usage = `vxwire: a userspace VXLAN overlay for containers

Usage:
  vxwire up -c FILE [--log-level LEVEL]       run the daemon in the foreground; SIGTERM
                                              stops it and containers keep their interfaces
  vxwire down -c FILE                         remove the interfaces a stopped daemon kept
  vxwire config check -c FILE                 validate a config file and exit
  vxwire genkey                               print a new private key (as wg genkey)
  vxwire pubkey < PRIVATE                     print the public key of a private key (as wg pubkey)
  vxwire gensecret                            print a new cluster secret for [host] secret_file
  vxwire version                              print the version
  vxwire oci-hook [--socket PATH] [STAGE]     OCI runtime hook: createRuntime or prestart
                                              attaches the container, poststop detaches
  CNI_COMMAND=… vxwire                        CNI plugin (type "vxwire"), see docs/runtimes.md

Client commands (each also takes --socket PATH or -c FILE):
  vxwire status [--json]                      show networks, peers, endpoints, counters
  vxwire peers [--json]                       list peer hosts and their counters
  vxwire network create --subnet CIDR [--gateway IP] [--vni N] [--mtu N]
                 [--opt encrypted] [--egress=false] [--json] NAME
                                              create a network on every host
  vxwire network ls [--json]                  list networks
  vxwire network inspect [--json] NAME        show one network
  vxwire network rm NAME                      remove a network created with network create
  vxwire attach --network NAME --netns PATH [--name N] [--ip A] [--mac M]
                 [--alias A]... [--ifname IF] [--container-id ID] [--json]
                                              attach a network namespace; --name defaults
                                              to the base name of --netns
  vxwire detach --network NAME --name N       detach an endpoint
  vxwire detach --container-id ID [--network NAME] [--ifname IF]
  vxwire publish add --network NAME [--proto tcp|udp] [--mode ingress|host]
                    [--listen IP] PORT NAME:PORT
                                              publish a port on every host
  vxwire publish ls [--json]                  list published ports
  vxwire publish rm [--proto tcp|udp] [--listen IP] PORT
                                              remove a published port
  vxwire service add --network NAME [--vip=false] NAME
                                              declare a service (a virtual IP) on every host
  vxwire service ls [--json]                  list services
  vxwire service rm --network NAME NAME       remove a service
  vxwire endpoint ls [--network NAME] [--all] [--json]
                                              list this host's endpoints; --all: every
                                              host's, with a HOST column

Flags may come before or after NAME. The daemon's socket is found from
--socket, else -c FILE's host.api_socket, else $VXWIRE_SOCKET, else
/run/vxwire/vxwire.sock.

Exit status:
  0  success
  1  failure (bad config file, the daemon refused or failed)
  2  usage error (unknown command or flag, bad flag value)
  3  the daemon could not be reached
  4  not found (no such network or endpoint)
  5  conflict (name, VNI, subnet or address taken; network still in use)
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
	case "down":
		err = cmdDown(args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			err = fmt.Errorf("%w: vxwire config check -c FILE", errUsage)
			break
		}
		err = cmdConfigCheck(args[2:], stdout)
	case "status":
		err = cmdStatus(args[1:], stdout)
	case "peers":
		err = cmdPeers(args[1:], stdout)
	case "network":
		err = cmdNetwork(args[1:], stdout)
	case "attach":
		err = cmdAttach(args[1:], stdout)
	case "detach":
		err = cmdDetach(args[1:], stdout)
	case "endpoint":
		err = cmdEndpoint(args[1:], stdout)
	case "publish":
		err = cmdPublish(args[1:], stdout)
	case "service":
		err = cmdService(args[1:], stdout)
	case "genkey":
		err = cmdGenkey(args[1:], stdout)
	case "pubkey":
		err = cmdPubkey(args[1:], stdin, stdout)
	case "gensecret":
		err = cmdGensecret(args[1:], stdout)
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
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "vxwire: %s\n", strings.TrimPrefix(err.Error(), "usage: "))
		return exitUsage
	}
	fmt.Fprintf(stderr, "vxwire: %v\n", err)
	switch {
	case errors.Is(err, api.ErrUnreachable):
		return exitNoConn
	case errors.Is(err, api.ErrNotFound):
		return exitNotFound
	case errors.Is(err, api.ErrConflict):
		return exitConflict
	default:
		return exitFail
	}
}

// usageError returns a usage error with a formatted message.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// newFlags returns a FlagSet whose parse errors are usage errors.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses a command that takes no positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("%s: unexpected argument %q", fs.Name(), pos[0])
	}
	return nil
}

// parseArgs parses flags that may come before, between or after
// positional arguments (the flag package stops at the first positional
// one) and returns the positional arguments. After "--" everything is
// positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// parseName parses a command that takes exactly one NAME.
func parseName(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	switch len(pos) {
	case 0:
		return "", usageError("%s needs NAME", fs.Name())
	case 1:
		return pos[0], nil
	default:
		return "", usageError("%s: unexpected argument %q", fs.Name(), pos[1])
	}
}
