// Package relay copies bytes between two connections, for the laptop
// doors (SOCKS5, forwards, exposes): one side a host socket, the other a
// connection of the daemon's userspace stack.
package relay

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// bufSize is the copy buffer of one direction; 64 KiB keeps a
// userspace-stack connection's window busy with few calls.
const bufSize = 64 << 10

// bufPool holds copy buffers: one per direction of each open relay, so
// memory follows the connections open, not those ever opened.
var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// closeWriter is a connection that can half-close (TCP): the far side then
// reads EOF while its answer may still flow back.
type closeWriter interface{ CloseWrite() error }

// Pipe copies a to b and b to a until both directions end, then closes
// both. When one side ends its stream, the other is half-closed (if it
// can be) so that a request/response protocol finishes; a side that
// cannot half-close is closed. idle, if positive, ends the relay after
// that long without a byte either way.
func Pipe(a, b net.Conn, idle time.Duration) {
	var last atomic.Int64 // unix nanoseconds of the last byte either way
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); oneWay(b, a, idle, &last) }()
	oneWay(a, b, idle, &last)
	wg.Wait()
	a.Close()
	b.Close()
}

// oneWay copies src to dst, then half-closes dst.
func oneWay(dst, src net.Conn, idle time.Duration, last *atomic.Int64) {
	buf := bufPool.Get().(*[bufSize]byte)
	defer bufPool.Put(buf)
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
		}
		n, err := src.Read(buf[:])
		if idle > 0 && n == 0 && isTimeout(err) && time.Since(time.Unix(0, last.Load())) < idle {
			continue // the other direction was busy meanwhile
		}
		if n > 0 {
			if idle > 0 {
				last.Store(time.Now().UnixNano())
			}
			if idle > 0 {
				dst.SetWriteDeadline(time.Now().Add(idle))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				break
			}
		}
		if err != nil {
			break
		}
	}
	if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
		return
	}
	dst.Close()
}

// Copy is io.CopyBuffer with a pooled buffer, for callers that manage the
// connections themselves.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	buf := bufPool.Get().(*[bufSize]byte)
	defer bufPool.Put(buf)
	return io.CopyBuffer(dst, src, buf[:])
}

// isTimeout reports a deadline error, of the host's sockets or of the
// userspace stack's (which only implements net.Error).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
