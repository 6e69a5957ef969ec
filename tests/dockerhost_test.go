package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// dockerHost is one dockerd of a test, run as Debian's docker.io runs on
// these machines: in the host's network namespace (nsenter --net, which
// keeps cgroups visible, unlike ip netns exec), in a mount namespace of
// its own where the test's plugin directory is bind-mounted over
// /run/docker/plugins, with its own data, exec root, pid file and API
// socket, and without iptables, bridge or overlay storage.
type dockerHost struct {
	e       *env
	h       *host
	dir     string
	plugins string // bind-mounted over /run/docker/plugins
	sock    string
	cmd     *exec.Cmd
	done    chan struct{}
	stopped sync.Once
}

// startDocker starts dockerd on h and waits until its API answers. The
// test skips when dockerd is not installed. Cleanup removes its
// containers and stops it by its pid.
func (e *env) startDocker(h *host) *dockerHost {
	e.t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		e.t.Skip("Docker test needs dockerd (Debian package docker.io)")
	}
	d := &dockerHost{e: e, h: h, dir: filepath.Join(e.dir, "docker-"+h.id), done: make(chan struct{})}
	d.plugins = filepath.Join(d.dir, "plugins")
	d.sock = filepath.Join(d.dir, "docker.sock")
	for _, dir := range []string{d.plugins, "/run/docker/plugins"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	log, err := os.Create(filepath.Join(d.dir, "dockerd.log"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer log.Close()
	script := fmt.Sprintf("mount --bind %s /run/docker/plugins && exec dockerd --data-root %s --exec-root %s "+
		"--pidfile %s -H unix://%s --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs",
		d.plugins, filepath.Join(d.dir, "data"), filepath.Join(d.dir, "exec"), filepath.Join(d.dir, "pid"), d.sock)
	// nsenter, unshare and sh each exec the next: the process is dockerd.
	d.cmd = exec.Command("nsenter", "--net="+h.path(), "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		e.t.Fatalf("start dockerd on %s: %v", h.id, err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	e.t.Cleanup(d.stop)
	e.eventually(90*time.Second, "dockerd on "+h.id+" answers", func() error {
		select {
		case <-d.done:
			b, _ := os.ReadFile(log.Name())
			return permanent(fmt.Errorf("dockerd exited:\n%s", tail(string(b), 30)))
		default:
		}
		_, err := d.docker("info")
		return err
	})
	return d
}

// docker runs the docker CLI against this dockerd.
func (d *dockerHost) docker(args ...string) (string, error) {
	return command(2*time.Minute, "docker", append([]string{"-H", "unix://" + d.sock}, args...)...)
}

// mustDocker runs the docker CLI and fails the test on error.
func (d *dockerHost) mustDocker(args ...string) string {
	d.e.t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		d.e.t.Fatalf("docker on %s: %v\n%s", d.h.id, err, out)
	}
	return strings.TrimSpace(out)
}

// running reports whether dockerd has not exited.
func (d *dockerHost) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// stopBeforeDaemons stops dockerd before the vxwire daemons started after
// it (cleanups run last in, first out), so that removing its containers
// still reaches the plugin.
func (d *dockerHost) stopBeforeDaemons() { d.e.t.Cleanup(d.stop) }

// stop removes every container, then stops dockerd with SIGTERM (it
// stops its own containerd), and SIGKILL if it has not exited after 30 s.
// Only the first call does anything.
func (d *dockerHost) stop() { d.stopped.Do(d.stopOnce) }

func (d *dockerHost) stopOnce() {
	if ids, err := d.docker("ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
		d.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	if !d.running() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		d.e.t.Errorf("dockerd on %s ignored SIGTERM for 30 s", d.h.id)
	}
	if d.e.t.Failed() {
		b, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
		d.e.t.Logf("log of dockerd on %s:\n%s", d.h.id, tail(string(b), 40))
	}
}

// importBusybox makes image bb:1 from a root file system holding static
// busybox and the applets the Docker tests call: no registry needed.
func (d *dockerHost) importBusybox() {
	d.e.t.Helper()
	root := d.e.busyboxRootfs("rootfs-" + d.h.id)
	for _, l := range []string{"head", "sha256sum", "httpd", "nslookup", "mkdir", "true"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil && !errors.Is(err, os.ErrExist) {
			d.e.t.Fatal(err)
		}
	}
	out, err := command(2*time.Minute, "sh", "-c", fmt.Sprintf("tar -C %s -c . | docker -H unix://%s import - bb:1", root, d.sock))
	if err != nil {
		d.e.t.Fatalf("docker import on %s: %v\n%s", d.h.id, err, out)
	}
}
