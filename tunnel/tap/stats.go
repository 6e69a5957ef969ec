package tap

import "sync/atomic"

// Stats are a device's counters since it was created. They are updated
// with atomic adds once per Read or Write call, so a snapshot taken while
// traffic flows is consistent per counter, not across counters.
type Stats struct {
	RxReads       uint64 // read(2) calls that returned a superframe
	RxSuperframes uint64 // TCP superframes that were segmented
	RxFrames      uint64 // frames returned by Read
	RxDropped     uint64 // superframes dropped as malformed or too large
	TxWrites      uint64 // writev(2) calls that succeeded
	TxFrames      uint64 // frames written (each coalesced segment counts)
	TxCoalesced   uint64 // frames that went out as part of a GSO write
	TxBadChecksum uint64 // TCP segments not coalesced for a bad checksum
	TxDropped     uint64 // frames dropped (malformed, or the kernel refused)
}

// counters is the live, atomically updated form of Stats.
type counters struct {
	rxReads, rxSuperframes, rxFrames, rxDropped               atomic.Uint64
	txWrites, txFrames, txCoalesced, txBadChecksum, txDropped atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RxReads:       c.rxReads.Load(),
		RxSuperframes: c.rxSuperframes.Load(),
		RxFrames:      c.rxFrames.Load(),
		RxDropped:     c.rxDropped.Load(),
		TxWrites:      c.txWrites.Load(),
		TxFrames:      c.txFrames.Load(),
		TxCoalesced:   c.txCoalesced.Load(),
		TxBadChecksum: c.txBadChecksum.Load(),
		TxDropped:     c.txDropped.Load(),
	}
}

// add accumulates a per-call tally into c, skipping zero fields so an
// idle direction costs nothing.
func (c *counters) add(t *tally) {
	for _, p := range [...]struct {
		v *uint64
		c *atomic.Uint64
	}{
		{&t.rxReads, &c.rxReads}, {&t.rxSuperframes, &c.rxSuperframes},
		{&t.rxFrames, &c.rxFrames}, {&t.rxDropped, &c.rxDropped},
		{&t.txWrites, &c.txWrites}, {&t.txFrames, &c.txFrames},
		{&t.txCoalesced, &c.txCoalesced}, {&t.txBadChecksum, &c.txBadChecksum},
		{&t.txDropped, &c.txDropped},
	} {
		if *p.v != 0 {
			p.c.Add(*p.v)
			*p.v = 0
		}
	}
}

// tally counts events within one Read or Write call, without atomics.
type tally struct {
	rxReads, rxSuperframes, rxFrames, rxDropped               uint64
	txWrites, txFrames, txCoalesced, txBadChecksum, txDropped uint64
}
