package main

// The TAP helper serves a hook that runs outside the user namespace that
// owns the container's network namespace (runc started by the user with
// a user namespace in config.json). A Go program cannot join a user
// namespace once it runs threads, so the hook re-executes this binary
// through nsenter(1), which joins the user namespace and then the network
// namespace before it execs, keeping the caller's ids (root inside):
//
//	hook ── nsenter --preserve-credentials --user=FD3 --net=NETNS
//	          └─ vxwire tap-helper open NAME     TAP fd ──▶ fd 4 (SCM_RIGHTS)
//	          └─ vxwire tap-helper configure     tap.Config as JSON on stdin
//
// The rootless daemon runs it the same way to keep a passed TAP across a
// restart (tap.NSHelper, tap/kept_linux.go):
//
//	daemon ── nsenter ... ── vxwire tap-helper socket     socket fd ──▶ fd 4
//	                      └─ vxwire tap-helper kept NAME  TAP fd + socket fd ──▶ fd 4
//
// The hidden subcommand is not part of the CLI.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vxwire/vxwire/tunnel/tap"
)

// tapHelperCmd is the hidden subcommand's name.
const tapHelperCmd = "tap-helper"

// helperTimeout bounds one run of the helper for the hook;
// daemonHelperTimeout for the daemon, which holds its lock meanwhile (a
// container could stop the helper, which runs in its namespaces).
const (
	helperTimeout       = 20 * time.Second
	daemonHelperTimeout = 10 * time.Second
)

// selfNetNS is the helper's own namespace, the container's once nsenter
// has joined it.
const selfNetNS = "/proc/self/ns/net"

// exitTAPGone is the helper's exit status when `kept NAME` finds no such
// TAP (tap.ErrTAPGone).
const exitTAPGone = 3

// tapHelper runs `vxwire tap-helper open NAME`, `kept NAME` or `socket`
// (fd 4: a unix socket to send the descriptors on) or `vxwire tap-helper
// configure` (stdin: tap.Config).
func tapHelper(args []string, stdin io.Reader, stderr io.Writer) int {
	err := func() error {
		switch {
		case len(args) == 2 && args[0] == "open":
			f, err := tap.OpenInNetNS(selfNetNS, args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			return sendFiles(f)
		case len(args) == 2 && args[0] == "kept":
			f, sock, err := tap.OpenKeptInNetNS(selfNetNS, args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			defer sock.Close()
			return sendFiles(f, sock)
		case len(args) == 1 && args[0] == "socket":
			sock, err := tap.SocketInNetNS(selfNetNS)
			if err != nil {
				return err
			}
			defer sock.Close()
			return sendFiles(sock)
		case len(args) == 1 && args[0] == "configure":
			var cfg tap.Config
			if err := json.NewDecoder(io.LimitReader(stdin, 1<<16)).Decode(&cfg); err != nil {
				return err
			}
			cfg.NetNS = selfNetNS
			return tap.ConfigureInNetNS(cfg)
		}
		return errors.New("usage: vxwire tap-helper open NAME | kept NAME | socket | configure")
	}()
	if err != nil {
		fmt.Fprintf(stderr, "vxwire tap-helper: %v\n", err)
		if errors.Is(err, tap.ErrTAPGone) {
			return exitTAPGone
		}
		return exitFail
	}
	return exitOK
}

// sendFiles sends files on fd 4 in one message (SCM_RIGHTS).
func sendFiles(files ...*os.File) error {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	return unix.Sendmsg(4, []byte{0}, unix.UnixRights(fds...), nil, 0)
}

// deniedErr reports whether err is EPERM or EACCES, wrapped or spelled
// out (the namespace helpers format errors with %v).
func deniedErr(err error) bool {
	if errors.Is(err, os.ErrPermission) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, syscall.EPERM.Error()) || strings.Contains(s, syscall.EACCES.Error())
}

// viaHelper runs the helper with args inside the user namespace that owns
// netns, and netns itself. extra becomes the helper's fd 4.
func viaHelper(netns string, timeout time.Duration, stdin io.Reader, extra *os.File, args ...string) error {
	nsf, err := os.Open(netns)
	if err != nil {
		return err
	}
	defer nsf.Close()
	ufd, err := unix.IoctlRetInt(int(nsf.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return fmt.Errorf("cannot find the user namespace that owns %s: %w", netns, err)
	}
	userns := os.NewFile(uintptr(ufd), "userns")
	defer userns.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("nsenter", append([]string{"--preserve-credentials", "--user=/proc/self/fd/3", "--net=" + netns,
		"--", self, tapHelperCmd}, args...)...)
	cmd.ExtraFiles = []*os.File{userns}
	if extra != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, extra)
	}
	cmd.Stdin = stdin
	cmd.WaitDelay = time.Second
	// Nothing of the caller's environment goes into the container's
	// namespaces.
	cmd.Env = []string{}
	out, err := runBounded(cmd, timeout)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == exitTAPGone {
		err = tap.ErrTAPGone
	}
	if err != nil {
		return fmt.Errorf("nsenter into %s's user namespace: %w: %s", netns, err, strings.TrimSpace(out))
	}
	return nil
}

// runBounded runs cmd for at most timeout and returns its output.
func runBounded(cmd *exec.Cmd, timeout time.Duration) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	t := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer t.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// helperOpen opens a TAP named ifname in netns through the helper and
// returns it.
func helperOpen(netns, ifname string) (*os.File, error) {
	files, err := helperFiles(netns, helperTimeout, 1, "open", ifname)
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// helperFiles runs the helper with args in netns's namespaces and returns
// the n descriptors it sent. Anything else it sent is closed.
func helperFiles(netns string, timeout time.Duration, n int, args ...string) ([]*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "tap-helper"), os.NewFile(uintptr(fds[1]), "tap-helper")
	defer mine.Close()
	err = viaHelper(netns, timeout, nil, theirs, args...)
	theirs.Close()
	if err != nil {
		return nil, err
	}
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4*n))
	// The helper has exited: its message is queued, or there is none.
	_, oobn, flags, _, err := unix.Recvmsg(int(mine.Fd()), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("nothing from the helper: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	var got []int
	for i := range msgs {
		if r, rerr := unix.ParseUnixRights(&msgs[i]); rerr == nil {
			got = append(got, r...)
		}
	}
	if err != nil || len(got) != n || flags&unix.MSG_CTRUNC != 0 {
		for _, fd := range got {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("the helper sent %d descriptors, not %d (%v)", len(got), n, err)
	}
	files := make([]*os.File, n)
	for i, fd := range got {
		files[i] = os.NewFile(uintptr(fd), "passed-fd")
	}
	return files, nil
}

// newNSHelper returns the daemon's tap.NSHelper.
func newNSHelper() tap.NSHelper { return nsHelper{} }

// nsHelper is the rootless daemon's tap.NSHelper: the TAP helper, run
// through nsenter in the container's user and network namespaces.
type nsHelper struct{}

// Socket returns a socket made in netns by the helper.
func (nsHelper) Socket(netns string) (*os.File, error) {
	files, err := helperFiles(netns, daemonHelperTimeout, 1, "socket")
	if err != nil {
		return nil, err
	}
	return files[0], nil
}

// OpenKept returns the kept TAP ifname of netns, and a socket beside it,
// from the helper.
func (nsHelper) OpenKept(netns, ifname string) (*os.File, *os.File, error) {
	files, err := helperFiles(netns, daemonHelperTimeout, 2, "kept", ifname)
	if err != nil {
		return nil, nil, err
	}
	return files[0], files[1], nil
}

// helperConfigure configures the TAP cfg.Name in netns through the helper.
func helperConfigure(netns string, cfg tap.Config) error {
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return viaHelper(netns, helperTimeout, strings.NewReader(string(b)), nil, "configure")
}
