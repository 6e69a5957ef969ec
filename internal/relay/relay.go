// Package relay copies bytes between two connections: the laptop doors
// (SOCKS5, forwards, exposes) and the published ports (their proxy and
// the relay between hosts). One side is a host socket, the other a
// connection of the daemon's userspace stack or another host's relay.
package relay

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Copy buffers, one per direction of each open relay, pooled so that
// memory follows the relays open, not those ever opened. A stream's is 32
// KiB, as io.Copy's: on loopback TCP it relays faster than 64 KiB (see
// BenchmarkPipe). A datagram's holds the largest one.
const (
	streamBuf   = 32 << 10
	datagramBuf = 64 << 10
)

var (
	streamBufs   = sync.Pool{New: func() any { return new([streamBuf]byte) }}
	datagramBufs = sync.Pool{New: func() any { return new([datagramBuf]byte) }}
)

// closeWriter is a connection that can half-close (TCP): the far side then
// reads EOF while its answer may still flow back.
type closeWriter interface{ CloseWrite() error }

// Pipe copies a to b and b to a until both directions end, then closes
// both, and returns the bytes copied each way. When one side ends its
// stream, the other is half-closed (if it can be) so that a
// request/response protocol finishes; a side that cannot half-close is
// closed. idle, if positive, ends the relay after that long without a
// byte either way.
//
// A panic of the goroutine that copies b to a closes both conns and is
// raised again in the caller's goroutine once both directions end, where
// the caller's recover (safe.Reporter.Recover) sees it.
func Pipe(a, b net.Conn, idle time.Duration) (aToB, bToA int64) {
	sb, ab := streamBufs.Get().(*[streamBuf]byte), streamBufs.Get().(*[streamBuf]byte)
	defer streamBufs.Put(sb)
	defer streamBufs.Put(ab)
	return pipe(a, b, idle, sb[:], ab[:])
}

// PipeDatagrams is Pipe for conns whose every Read and Write carries one
// datagram of up to 64 KiB (a UDP socket, a stream framing datagrams):
// each crosses whole, the empty one included.
func PipeDatagrams(a, b net.Conn, idle time.Duration) (aToB, bToA int64) {
	sb, ab := datagramBufs.Get().(*[datagramBuf]byte), datagramBufs.Get().(*[datagramBuf]byte)
	defer datagramBufs.Put(sb)
	defer datagramBufs.Put(ab)
	return pipe(a, b, idle, sb[:], ab[:])
}

// pipe is Pipe with the buffers of either direction: a to b copies
// through ab, b to a through ba.
func pipe(a, b net.Conn, idle time.Duration, ab, ba []byte) (aToB, bToA int64) {
	var last atomic.Int64 // unix nanoseconds of the last byte either way
	last.Store(time.Now().UnixNano())
	var wg sync.WaitGroup
	var crash any
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if p := recover(); p != nil {
				crash = fmt.Errorf("relay: %v\n%s", p, debug.Stack())
				a.Close()
				b.Close()
			}
		}()
		bToA = oneWay(a, b, idle, &last, ba)
	}()
	aToB = oneWay(b, a, idle, &last, ab)
	wg.Wait()
	a.Close()
	b.Close()
	if crash != nil {
		panic(crash)
	}
	return aToB, bToA
}

// oneWay copies src to dst through buf, then half-closes dst, and
// returns the bytes written.
func oneWay(dst, src net.Conn, idle time.Duration, last *atomic.Int64, buf []byte) int64 {
	var total int64
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
		}
		n, err := src.Read(buf)
		if idle > 0 && n == 0 && isTimeout(err) && time.Since(time.Unix(0, last.Load())) < idle {
			continue // the other direction was busy meanwhile
		}
		if n > 0 || err == nil { // an empty datagram is one too
			if idle > 0 {
				last.Store(time.Now().UnixNano())
				dst.SetWriteDeadline(time.Now().Add(idle))
			}
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				src.Close()
				break
			}
		}
		if err != nil {
			break
		}
	}
	if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
		return total
	}
	dst.Close()
	return total
}

// isTimeout reports a deadline error, of the host's sockets or of the
// userspace stack's (which only implements net.Error).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
