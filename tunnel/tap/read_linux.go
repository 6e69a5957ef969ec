package tap

// Read side of a Native device: container → switch.
//
//	Wait ──▶ drained? ──no──▶ return (frames may still be queued)
//	           │yes
//	           ▼
//	   RawConn.Read(waitReady): poll(fd, 0) ─ready─▶ return
//	           │not ready: park on the netpoller until the TAP is readable
//	           ▼
//	Read ──▶ emit what the splitter still holds from the last call
//	  loop while bufs has room (and at most 2*len(bufs)+8 reads):
//	     (woken from a park and frames in hand ─▶ stop: see below)
//	     take a superframe buffer from superPool (only now: idle = no buffer)
//	     RawConn.Read(readOnce): read(2) one superframe, never parks
//	       EAGAIN ─▶ drained = true, stop
//	     splitter.load: validate, complete a partial checksum  (bad: drop, count)
//	     frames in hand and the superframe's segments do not all fit in
//	       bufs ─▶ stop, keep it whole for the next Read (a batch that
//	       ended inside it would cut it in two on the underlay and at
//	       the far TAP)
//	     splitter.emit: copy / segment into bufs[n:]
//	       (ReadSplit: headers only, payloads lent as tails; the buffer
//	       joins r.held until the next Wait or Read)
//	     superframe not fully emitted ─▶ stop, keep it for the next Read
//	  give the buffer back to superPool unless a superframe is pending
//
// Why Wait polls before parking: RawConn.Read resets the descriptor's
// readiness before calling its function, and the netpoller is
// edge-triggered. A frame that arrived after the last read(2) returned
// EAGAIN but before that reset would be forgotten, and the reader would
// park with a frame queued. A zero-timeout poll(2) after the reset closes
// that window; anything later sets readiness again. It costs one syscall
// per Wait that finds the TAP drained.
//
// Why raw system calls (unix.RawSyscall here, in write_linux.go and in
// encap's recvmmsg/sendmmsg): the descriptor is nonblocking, so read(2),
// writev(2) and a zero-timeout ppoll(2) never sleep, and nothing is gained
// by telling the scheduler about them. Entering them through Syscall
// wakes the runtime's sysmon thread whenever it sleeps, that is on every
// frame after an idle spell; awake, it polls every 20 µs for a millisecond
// or more before it sleeps again. For a lone ping that was a third of the
// daemon's context switches (see "Latency" in docs/performance.md). Every
// descriptor a Native reads is nonblocking: Create opens it O_NONBLOCK and
// Adopt sets it so.
//
// Why the first Read after a park stops at the first superframe: a reader
// that had to park was idle, so the frame that woke it is most likely
// alone (a ping, a DNS query, the first segment of a burst). Reading on
// until EAGAIN would make that frame wait for one more read(2) before the
// switch sends it. Returning at once leaves drained unset, so the next
// Wait returns without parking and the next Read batches whatever came in
// meanwhile: the EAGAIN read moves behind the send instead of before it,
// and a busy reader, which never parks, batches as before.

import (
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reader is the state of the goroutine calling Wait and Read.
type reader struct {
	sbuf *[superSize]byte // superframe buffer, nil while idle
	// held are superframe buffers whose payloads ReadSplit lent to its
	// caller: they go back to superPool at the next Wait or Read.
	held      []*[superSize]byte
	sp        splitter
	drained   bool // the last read(2) returned EAGAIN
	woke      bool // Wait parked and was woken: the next Read is a lone one
	n         int  // result of readOnce
	err       error
	waitCalls int // calls of waitReady within one Wait
	pfd       [1]unix.PollFd
	t         tally
}

// maxEINTR bounds the retries of a syscall interrupted by a signal.
const maxEINTR = 3

// zeroTimeout is the timeout of waitReady's ppoll(2): return at once.
var zeroTimeout unix.Timespec

// errnoErr is e as an error, nil for 0.
func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// Wait blocks until the TAP has a frame to read, a superframe is still
// pending from the last Read, or the device is closed (net.ErrClosed). It
// must be called from the goroutine that calls Read. A wakeup may be
// spurious: the following Read then returns 0 frames.
func (d *Native) Wait() error {
	if d.closed.Load() {
		return net.ErrClosed
	}
	r := &d.rd
	r.releaseHeld()
	if r.sp.active() || !r.drained {
		return nil
	}
	r.waitCalls = 0
	if err := d.rc.Read(d.waitFn); err != nil {
		return d.mapErr("wait on", err)
	}
	r.drained, r.woke = false, true
	return nil
}

// waitReady is Wait's RawConn function: on its first call it reports
// whether the TAP is readable right now, and on the second, made when the
// netpoller saw the TAP become readable, it ends the wait.
func (d *Native) waitReady(fd uintptr) bool {
	r := &d.rd
	r.waitCalls++
	if r.waitCalls > 1 {
		return true
	}
	r.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	n, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&r.pfd[0])), 1, uintptr(unsafe.Pointer(&zeroTimeout)), 0, 0, 0)
	return e != 0 || n > 0 // on error let Read find out
}

// readOnce is Read's RawConn function: one nonblocking read(2) of a
// superframe into the reader's buffer. It never asks to park.
func (d *Native) readOnce(fd uintptr) bool {
	r := &d.rd
	for range maxEINTR {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.sbuf[0])), uintptr(len(r.sbuf)))
		if e != unix.EINTR {
			r.n, r.err = int(n), errnoErr(e)
			return true
		}
	}
	r.n, r.err = 0, unix.EINTR
	return true
}

// Read stores frames from the container at bufs[i][offset:offset+sizes[i]]
// and returns how many. It never blocks: it stops when bufs is full, when
// the TAP is drained, after a bounded number of reads, or, on the first
// Read after Wait found the TAP drained, once it holds a frame (see the
// top of this file). TSO superframes are segmented into frames of at most
// MTU+14 bytes with complete checksums; one whose frames do not all fit is
// continued by the next Read. Each buffer must be at least offset+MTU+14
// bytes long. Malformed superframes are dropped and counted in Stats. It
// must not be called concurrently with itself or Wait; frames are the
// caller's once returned.
func (d *Native) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return d.read(bufs, sizes, nil, offset)
}

// ReadSplit is Read for a caller that sends a frame's headers and its
// payload from separate slices (SplitReader): a TCP segment cut from a
// superframe has its headers, with the checksum of the whole segment, at
// bufs[i][offset:offset+sizes[i]] and its payload in tails[i], a view of
// the superframe, valid until the next Wait, Read or ReadSplit. Every
// other frame is stored whole, with a nil tail. The payloads are never
// copied in user space. len(tails) must be at least len(bufs).
func (d *Native) ReadSplit(bufs [][]byte, sizes []int, tails [][]byte, offset int) (int, error) {
	if len(tails) < len(bufs) {
		return 0, errShortTails
	}
	return d.read(bufs, sizes, tails[:len(bufs)], offset)
}

// errShortTails is ReadSplit's answer to fewer tails than buffers.
var errShortTails = errors.New("tap: fewer tails than buffers")

// emit emits what the splitter holds into bufs (and tails, if not nil).
// A superframe that lent its payloads and is done joins r.held.
func (r *reader) emit(bufs [][]byte, sizes []int, tails [][]byte, offset int) int {
	if tails == nil {
		k, dropped := r.sp.emit(bufs, sizes, offset)
		r.t.rxDropped += b2u(dropped)
		return k
	}
	lent := r.sp.gso
	k, dropped := r.sp.emitHeads(bufs, sizes, tails, offset)
	r.t.rxDropped += b2u(dropped)
	if lent && k > 0 && !r.sp.active() {
		r.held = append(r.held, r.sbuf)
		r.sbuf = nil
	}
	return k
}

// releaseHeld gives back the superframe buffers whose payloads were lent.
func (r *reader) releaseHeld() {
	for i, b := range r.held {
		superPool.Put(b)
		r.held[i] = nil
	}
	r.held = r.held[:0]
}

// read is Read, and with tails not nil ReadSplit.
func (d *Native) read(bufs [][]byte, sizes []int, tails [][]byte, offset int) (int, error) {
	r := &d.rd
	r.releaseHeld()
	if d.closed.Load() {
		d.releaseRead()
		return 0, net.ErrClosed
	}
	n := 0
	r.drained = false
	lone := r.woke
	r.woke = false
	if r.sp.active() {
		n += r.emit(bufs, sizes, tails, offset)
	}
	var err error
	maxReads := 2*len(bufs) + 8
	for reads := 0; n < len(bufs) && !r.sp.active() && reads < maxReads; reads++ {
		if r.sbuf == nil {
			r.sbuf = superPool.Get().(*[superSize]byte)
		}
		if rerr := d.rc.Read(d.readFn); rerr != nil {
			err = d.mapErr("read", rerr)
			break
		}
		if r.err != nil {
			if r.err == unix.EAGAIN {
				r.drained = true
			} else {
				err = d.mapErr("read", r.err)
			}
			break
		}
		r.t.rxReads++
		if !r.sp.load(r.sbuf[:r.n]) {
			r.t.rxDropped++
			continue
		}
		if r.sp.gso {
			r.t.rxSuperframes++
		}
		if n > 0 && r.sp.left() > len(bufs)-n {
			break // whole in the next Read, which emits it first
		}
		n += r.emit(bufs[n:], sizes[n:], from(tails, n), offset)
		if lone && n > 0 {
			break // send it now; the next Read batches the rest
		}
	}
	if !r.sp.active() && r.sbuf != nil {
		superPool.Put(r.sbuf)
		r.sbuf = nil
	}
	r.t.rxFrames += uint64(n)
	d.ctr.add(&r.t)
	if n > 0 {
		return n, nil // a persistent error shows again on the next call
	}
	if err != nil {
		d.releaseRead()
	}
	return 0, err
}

// releaseRead drops a pending superframe and returns its buffer.
func (d *Native) releaseRead() {
	r := &d.rd
	r.releaseHeld()
	r.sp.reset()
	if r.sbuf != nil {
		superPool.Put(r.sbuf)
		r.sbuf = nil
	}
}

// b2u converts a bool to 0 or 1.
func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// from is tails[i:], or nil for no tails.
func from(tails [][]byte, i int) [][]byte {
	if tails == nil {
		return nil
	}
	return tails[i:]
}
