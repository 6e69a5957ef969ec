package crypto

// The UAPI socket, /var/run/wireguard/NAME.sock, speaks WireGuard's
// cross-platform configuration protocol so that `wg show NAME` and wgctrl
// read the device like any other WireGuard interface:
//
//	request                     answer
//	get=1\n\n                   the device's key=value dump, then errno=0\n\n
//	set=1\n key=value\n ... \n  errno=1\n\n (EPERM), nothing changed
//
// A set is refused: the vxwire configuration file owns the device, and a
// peer or key changed behind its back would be silently undone by the next
// reload or epoch switch, or would leave the peer table of the data path
// (ID ↔ tunnel address) disagreeing with WireGuard's allowed-ips.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
)

// errnoEPERM is what a refused set answers, as the protocol's errno=N.
// The UAPI carries errno values negated (wireguard-go answers errno=-22
// for EINVAL), and wg(8) negates them back for its message.
const errnoEPERM = -1

// uapiServer serves one UAPI socket. Its goroutines end in close.
type uapiServer struct {
	l     *slog.Logger
	crash safe.Reporter
	dev   *device.Device
	ln    net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// listenUAPI creates the socket of interface name (failing if a live
// process serves it already) and starts serving it. dir "" is
// wireguard-go's /var/run/wireguard; another dir (rootless mode) gets a
// socket of this package, with the same stale-socket rule.
func listenUAPI(name, dir string, dev *device.Device, l *slog.Logger, crash safe.Reporter) (*uapiServer, error) {
	var ln net.Listener
	var err error
	if dir == "" {
		ln, err = listenWireGuardDir(name)
	} else {
		ln, err = listenDir(filepath.Join(dir, name+".sock"))
	}
	if err != nil {
		return nil, err
	}
	s := &uapiServer{l: l, crash: crash, dev: dev, ln: ln, conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	crash.Go("wireguard uapi accept", s.routineAccept)
	return s, nil
}

// listenDir listens on the unix socket path, made in a directory only the
// daemon's user may enter; a socket nobody answers on is replaced, one a
// live process serves is an error. The listener removes the file when
// closed.
func listenDir(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create uapi socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("uapi socket %s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot remove stale uapi socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on uapi socket: %w", err)
	}
	return ln, nil
}

// routineAccept accepts clients until close. wireguard-go's UAPI listener
// reports exactly two errors in its life, one from its inotify watch and
// one from its accept loop, each from a goroutine that blocks until the
// error is taken; so this loop takes both before it returns, and logs the
// first one if the socket file was removed while running.
func (s *uapiServer) routineAccept() {
	defer s.wg.Done()
	for errs := 0; errs < 2; {
		c, err := s.ln.Accept()
		if err != nil {
			errs++
			if !s.isClosed() && errs == 1 {
				s.l.Warn("uapi socket no longer served; wg show will not find the device", "error", err)
			}
			continue
		}
		if !s.track(c) {
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.routineServe(c)
	}
}

func (s *uapiServer) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *uapiServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// routineServe answers one client's requests until it hangs up.
func (s *uapiServer) routineServe(c net.Conn) {
	defer s.crash.Recover(RecoveredUAPI, nil) // the defers below close c
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	for {
		op, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		switch op {
		case "get=1\n":
			if b, err := rw.ReadByte(); err != nil || b != '\n' {
				return
			}
			if err := s.dev.IpcGetOperation(rw); err != nil {
				fmt.Fprintf(rw, "errno=%d\n\n", ipcErrno(err))
			} else {
				rw.WriteString("errno=0\n\n")
			}
		case "set=1\n":
			if err := skipRequest(rw.Reader); err != nil {
				return
			}
			s.l.Warn("refused a uapi set: the vxwire configuration file owns this device; change the file and reload instead")
			fmt.Fprintf(rw, "errno=%d\n\n", errnoEPERM)
		default:
			return
		}
		if rw.Flush() != nil {
			return
		}
	}
}

// skipRequest reads up to and including the empty line that ends a set.
func skipRequest(r *bufio.Reader) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if line == "\n" {
			return nil
		}
	}
}

// ipcErrno is the errno wireguard-go attached to a failed operation.
func ipcErrno(err error) int64 {
	var e *device.IPCError
	if errors.As(err, &e) {
		return e.ErrorCode()
	}
	return ipc.IpcErrorUnknown
}

// close removes the socket file, disconnects clients and waits for the
// server's goroutines.
func (s *uapiServer) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}
