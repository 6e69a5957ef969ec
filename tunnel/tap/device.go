package tap

// Device is a container's Ethernet port as the switch sees it: frames in,
// frames out, a batch at a time. It is shaped after wireguard-go's
// tun.Device. The native implementation is a TAP opened with IFF_VNET_HDR:
// large TSO frames from the container are split into MTU-sized frames with
// complete checksums on Read, and consecutive TCP segments are coalesced
// into one GSO frame on Write, so the switch only ever sees ordinary
// Ethernet frames while the kernel sees few, large writes.
type Device interface {
	// Wait blocks until Read would return at least one frame, or the
	// device is closed (then it returns net.ErrClosed). A wakeup may be
	// spurious, in which case Read returns 0 frames. Callers take buffers
	// for Read only after Wait returns, so an idle device holds no frame
	// buffers. Wait and Read are called from the same goroutine.
	Wait() error

	// Read reads frames without blocking once Wait has returned. Frame i is
	// stored at bufs[i][offset:offset+sizes[i]]; the offset bytes before it
	// are headroom the caller uses to prepend the VXLAN header in place.
	// It returns the number of frames stored, which may be 0 if the frame
	// that woke Wait was malformed and dropped. Each buffer must be at
	// least offset+MTU+14 bytes long. Read is not safe for concurrent use.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)

	// Write writes every frame in frames to the container. Frames are
	// borrowed for the duration of the call and never modified; Write may
	// coalesce runs of TCP segments into one GSO write. It returns the
	// number of frames accepted. Write is safe for concurrent use.
	Write(frames [][]byte) (n int, err error)

	// BatchSize is the largest number of frames one Read returns.
	BatchSize() int

	// MTU is the device's IP MTU.
	MTU() int

	// Close closes the device and, for a native TAP, deletes the link from
	// the container's namespace. It is safe to call more than once.
	Close() error
}

// SplitReader is a Device that can lend the payload of each TCP segment
// it cuts from a TSO superframe instead of copying it next to the
// segment's headers, for a caller that sends the two from separate slices
// (encap.GatherWriter).
type SplitReader interface {
	// ReadSplit is Read, except that a segment cut from a superframe has
	// only its headers, with the checksum of the whole segment, at
	// bufs[i][offset:offset+sizes[i]], and its payload in tails[i], valid
	// until the next Wait, Read or ReadSplit; every other frame is stored
	// whole, with a nil tail. len(tails) must be at least len(bufs).
	ReadSplit(bufs [][]byte, sizes []int, tails [][]byte, offset int) (n int, err error)
}

// Keeper is a Device whose link can outlive it (a persistent TAP): Keep
// closes the device and leaves the link, addresses and routes in the
// container for the next daemon to reopen through Config.Reopen and the
// device's Identity. Persistent reports whether Keep leaves the link; when
// it does not, Keep is Close. All three are safe for concurrent use.
type Keeper interface {
	Device
	Keep() error
	Identity() Identity
	Persistent() bool
}

var _ Keeper = (*Native)(nil)

// Mover is a Device whose link another program may move to another
// namespace and rename (a handoff TAP): Where says where it is now. It is
// safe for concurrent use.
type Mover interface {
	Where() (id Identity, name string, err error)
}

var _ Mover = (*Native)(nil)
