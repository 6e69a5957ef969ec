package tap

// Write side of a Native device: switch → container.
//
//	Write(frames) ── lock wmu ──▶ for each position i in frames:
//	   frame already written with a UDP group ─▶ skip
//	   frame shorter than Ethernet or larger than a superframe ─▶ drop, count
//	   UDP: planUDP(frames[i:]) ─▶ that datagram and the later ones of its
//	        flow (taken), one GSO_UDP_L4 writev, or one by one
//	   planCoalesce(frames[i:]) ─▶ run of n segments of one TCP flow
//	     n > 1: iov = [virtio hdr + rewritten header (scratch)] +
//	                  [payload of segment k, straight from frames[i+k]]...
//	            one writev(2); if the kernel refuses it, write the n
//	            segments one by one instead
//	     n = 1: iov = [zeroed virtio hdr][frame] — one writev(2)
//	   each writev goes through RawConn.Write(writeOnce):
//	     EINTR ─▶ retry (maxEINTR)      EAGAIN ─▶ park until writable (maxEAGAIN)
//	     ENOBUFS ─▶ sleep and retry (maxNoBufs)
//	     net.ErrClosed ─▶ return; other errors ─▶ drop, count, rate-limited log
//	   clear the iovecs so the device keeps no reference to caller frames
//
// Nothing allocates: the iovec array, the header scratch, the taken marks
// and the bound writeOnce function live in the device. Frames are never modified.

import (
	"errors"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vxwire/vxwire/internal/ether"
)

// writer is the state of Write, guarded by Native.wmu.
type writer struct {
	iov   [maxCoalesceSegs + 1]unix.Iovec
	iovN  int
	hdr   [maxCoalesceHdr]byte // virtio + packet header of a GSO write
	taken [maxBatch]bool       // frames already written with a UDP group
	// noUDPGSO is set once the kernel refused a UDP GSO write as invalid.
	noUDPGSO bool
	idx      [maxCoalesceSegs]uint16
	zero     [vnetHdrLen]byte // virtio header of an ordinary frame
	again    int              // EAGAINs within one writev
	err      error            // result of writeOnce
	lastLog  time.Time
	t        tally
}

const (
	maxEAGAIN   = 3 // waits for writability per writev
	maxNoBufs   = 3 // retries after ENOBUFS per writev
	noBufsPause = 50 * time.Microsecond
	// maxWriteLen is the largest frame Write accepts.
	maxWriteLen = ethHdrLen + ether.VLANTagLen + maxIPLen
)

// Write writes frames to the container and returns len(frames), or the
// number written before the device was closed together with
// net.ErrClosed. Runs of TCP segments of one flow go out as a single GSO
// write, and so do the datagrams of one UDP flow within frames, in their
// order; a frame the kernel refuses is dropped and counted in Stats.
// Frames are borrowed for the call and never modified. Write is safe for
// concurrent use; calls are serialized.
func (d *Native) Write(frames [][]byte) (int, error) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	w := &d.wr
	defer d.ctr.add(&w.t)
	defer clear(w.taken[:min(len(frames), len(w.taken))])
	for i := 0; i < len(frames); {
		if i < len(w.taken) && w.taken[i] {
			i++ // written with its UDP group
			continue
		}
		if len(frames[i]) < ethHdrLen || len(frames[i]) > maxWriteLen {
			w.t.txDropped++
			i++
			continue
		}
		if isUDP(frames[i]) {
			if err := d.writeUDP(frames[i:], i); err == net.ErrClosed {
				return i, err
			}
			i++
			continue
		}
		start := i
		n, hn, bad := planCoalesce(frames[i:], w.hdr[:])
		if bad >= 0 {
			w.t.txBadChecksum++
		}
		if n > 1 {
			err := d.writeGSO(frames[i:i+n], nil, hn)
			if err == net.ErrClosed {
				return i, err
			}
			if err == nil {
				i += n
			} // else the kernel refused it: write the run's frames one by one
		}
		end := start + n
		if bad == n && end < len(frames) {
			end++ // the frame after the run is known bad: write it alone, unplanned
		}
		for ; i < end; i++ {
			if err := d.writeFrame(frames[i]); err == net.ErrClosed {
				return i, err
			}
		}
	}
	return len(frames), nil
}

// writeUDP writes the UDP datagram frames[0] (at position i of Write's
// frames) together with the later datagrams of its flow that planUDP
// gathers, as one GSO write, or alone. If the kernel refuses the GSO
// write, the group's datagrams are written one by one, in order.
func (d *Native) writeUDP(frames [][]byte, i int) error {
	w := &d.wr
	var taken []bool
	if i < len(w.taken) {
		taken = w.taken[i:]
	}
	n, hn := 1, 0
	w.idx[0] = 0
	if len(taken) > 1 && !w.noUDPGSO {
		n, hn = planUDP(frames, taken, w.idx[:], w.hdr[:])
	}
	if n > 1 {
		err := d.writeGSO(frames, w.idx[:n], hn)
		if err == nil || err == net.ErrClosed {
			return err
		}
		if errors.Is(err, unix.EINVAL) {
			w.noUDPGSO = true // a kernel without UDP GSO from a TAP: stop asking
		}
	}
	for _, j := range w.idx[:n] {
		if err := d.writeFrame(frames[j]); err == net.ErrClosed {
			return err
		}
	}
	return nil
}

// writeGSO writes a run or group as one superframe whose header
// planCoalesce or planUDP left in w.hdr[:hn]: frames[idx[k]] for each k,
// or every frame of frames when idx is nil. On a refusal the caller
// writes the frames one by one.
func (d *Native) writeGSO(frames [][]byte, idx []uint16, hn int) error {
	w := &d.wr
	hdrLen := hn - vnetHdrLen
	setIov(&w.iov[0], w.hdr[:hn])
	n := len(frames)
	if idx != nil {
		n = len(idx)
	}
	for k := range n {
		f := frames[k]
		if idx != nil {
			f = frames[idx[k]]
		}
		setIov(&w.iov[k+1], f[hdrLen:ipEnd(f)])
	}
	err := d.writev(n + 1)
	if err == nil {
		w.t.txWrites++
		w.t.txFrames += uint64(n)
		w.t.txCoalesced += uint64(n)
	} else if err != net.ErrClosed {
		d.logLimited(&w.lastLog, "tap refused a coalesced write", err)
	}
	return err
}

// writeFrame writes one frame with a zeroed virtio header.
func (d *Native) writeFrame(f []byte) error {
	w := &d.wr
	setIov(&w.iov[0], w.zero[:])
	setIov(&w.iov[1], f)
	err := d.writev(2)
	switch {
	case err == nil:
		w.t.txWrites++
		w.t.txFrames++
	case err != net.ErrClosed:
		w.t.txDropped++
		d.logLimited(&w.lastLog, "cannot write to tap", err)
	}
	return err
}

// writev writes the first cnt iovecs as one frame, retrying transient
// errors a bounded number of times, then clears them.
func (d *Native) writev(cnt int) error {
	w := &d.wr
	w.iovN = cnt
	defer clear(w.iov[:cnt])
	for attempt := 0; ; attempt++ {
		w.again, w.err = 0, nil
		if err := d.rc.Write(d.writeFn); err != nil {
			return d.mapErr("write", err)
		}
		if w.err == nil {
			return nil
		}
		if !errors.Is(w.err, unix.ENOBUFS) || attempt >= maxNoBufs {
			if errors.Is(w.err, unix.EBADF) {
				return d.mapErr("write", w.err)
			}
			return w.err
		}
		time.Sleep(noBufsPause << attempt)
	}
}

// writeOnce is Write's RawConn function: one writev(2) of the prepared
// iovecs. It asks to park on EAGAIN, at most maxEAGAIN times.
func (d *Native) writeOnce(fd uintptr) bool {
	w := &d.wr
	for range maxEINTR {
		// Raw, like the reads (see read_linux.go): nonblocking.
		_, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.iovN))
		switch e {
		case 0:
			w.err = nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			w.again++
			if w.again > maxEAGAIN {
				w.err = e
				return true
			}
			return false
		default:
			w.err = e
			return true
		}
	}
	w.err = unix.EINTR
	return true
}

// setIov points v at b, which must not be empty.
func setIov(v *unix.Iovec, b []byte) {
	v.Base = &b[0]
	v.SetLen(len(b))
}
