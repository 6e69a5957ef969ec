package encap

import (
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The round trip of one datagram between two StdConns on loopback, the
// shape of a lone ping through the daemon: each hop is one wakeup of a
// parked reader. The echo side runs one of two ways:
//
//	netpoller      the daemon's way: Read parks the goroutine on the Go
//	               netpoller, which wakes it when the socket is readable.
//	locked-thread  a goroutine locked to its OS thread blocks in ppoll(2)
//	               on the socket and an eventfd (written to stop it), then
//	               reads; no netpoller on the echo side.
//
// "idle" leaves the runtime idle for a millisecond before each datagram,
// so that every thread has parked, as between the pings of the bench (10
// ms apart); "busy" sends back to back. ns/op is one round trip.
func BenchmarkStdConnRoundTrip(b *testing.B) {
	for _, echo := range []string{"netpoller", "locked-thread"} {
		for _, idle := range []bool{false, true} {
			name := echo + "/busy"
			if idle {
				name = echo + "/idle"
			}
			b.Run(name, func(b *testing.B) { benchRoundTrip(b, echo == "locked-thread", idle) })
		}
	}
}

func benchRoundTrip(b *testing.B, locked, idle bool) {
	c, s := listenPair(b, 8)
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		routineEcho(s, locked, stop)
	}()
	defer func() {
		_, _ = unix.Write(stop, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		s.Close()
		wg.Wait()
		unix.Close(stop)
	}()
	out := payloads(98) // an ICMP echo's frame
	r := newReadScratch(8)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if idle {
			b.StopTimer()
			time.Sleep(time.Millisecond)
			b.StartTimer()
		}
		if err := c.Write(out, s.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if n, err := c.Read(r.bufs, r.sizes, r.eps); err != nil || n != 1 {
			b.Fatalf("read %d datagrams: %v", n, err)
		}
	}
}

// routineEcho sends every datagram s receives back to its sender until s
// is closed (netpoller) or stop is written (locked thread).
func routineEcho(s *StdConn, locked bool, stop int) {
	r := newReadScratch(8)
	var pfd [2]unix.PollFd
	if locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		_ = s.rc.Control(func(fd uintptr) { pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN} })
		pfd[1] = unix.PollFd{Fd: int32(stop), Events: unix.POLLIN}
	}
	for {
		if locked {
			// A blocking system call: the thread sleeps in the kernel and
			// is woken by the socket, not by the netpoller.
			_, _, e := unix.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd[0])), 2, 0, 0, 0, 0)
			if e != 0 && e != unix.EINTR || pfd[1].Revents != 0 {
				return
			}
			if pfd[0].Revents == 0 {
				continue
			}
		}
		n, err := s.Read(r.bufs, r.sizes, r.eps)
		if err != nil {
			return
		}
		for i := range n {
			if s.Write([][]byte{r.bufs[i][:r.sizes[i]]}, r.eps[i]) != nil {
				return
			}
		}
	}
}
