package hook

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/vxwire/vxwire/internal/api"
)

// writeResolvConf writes ep's resolver settings into the container's
// /etc/resolv.conf. The file is opened with openat2(RESOLVE_IN_ROOT) below
// the container's root, so a symlink in the image (such as one to
// /run/systemd/resolve/stub-resolv.conf) resolves inside the container and
// never reaches the host's files, and a bind mount the runtime placed over
// the file (podman's) is written in place. A read-only file or root is an
// error the caller reports as a warning: the container keeps its resolver.
func (h *Hook) writeResolvConf(pid int, rootfs string, ep api.Endpoint) error {
	if len(ep.DNS.Nameservers) == 0 {
		return nil
	}
	root, err := h.containerRoot(pid, rootfs)
	if err != nil {
		return err
	}
	err = writeInRoot(root, "etc/resolv.conf", resolvConf(ep))
	if errors.Is(err, unix.EROFS) {
		return fmt.Errorf("its /etc/resolv.conf is read-only (a read-only bind mount or root file system): %w", err)
	}
	return err
}

// containerRoot returns a path naming the container's root directory. A
// createRuntime hook runs before the container pivots into its root: then
// /proc/PID/root is still the host's / (in the container's mount
// namespace), and the root file system is mounted at its own path below
// it. After the pivot /proc/PID/root is the container's root itself.
// Telling the two apart by device and inode keeps the hook from ever
// writing the host's /etc/resolv.conf.
func (h *Hook) containerRoot(pid int, rootfs string) (string, error) {
	procRoot := h.procPath(pid, "root")
	var pr, hr unix.Stat_t
	if err := unix.Stat(procRoot, &pr); err != nil {
		return "", fmt.Errorf("cannot stat %s: %w", procRoot, err)
	}
	if err := unix.Stat("/", &hr); err != nil {
		return "", fmt.Errorf("cannot stat /: %w", err)
	}
	if pr.Dev != hr.Dev || pr.Ino != hr.Ino {
		return procRoot, nil
	}
	if rootfs == "" {
		return "", errors.New("the container has not entered its root yet and its config names no root path")
	}
	dir := procRoot + rootfs
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("cannot find the container's root: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("the container's root %s is not a directory", rootfs)
	}
	return dir, nil
}

// resolvConf renders ep's resolver settings in resolv.conf(5) syntax, as
// the daemon writes them for named network namespaces.
func resolvConf(ep api.Endpoint) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# vxwire: network %s, the gateway answers container names\n", ep.Network)
	for _, ns := range ep.DNS.Nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	if len(ep.DNS.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(ep.DNS.Search, " "))
	}
	b.WriteString("options ndots:0\n")
	return []byte(b.String())
}

// writeInRoot replaces the content of name, resolved with root as "/",
// creating the file (mode 0644) if it does not exist. The directory must
// exist.
func writeInRoot(root, name string, data []byte) error {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open the container's root: %w", err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, name, &unix.OpenHow{
		Flags:   unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC | unix.O_CLOEXEC,
		Mode:    0o644,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return fmt.Errorf("cannot open /%s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write /%s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write /%s: %w", name, err)
	}
	return nil
}
