package tunnel

import (
	"sync/atomic"

	"github.com/vxwire/vxwire/internal/api"
)

// dropReason indexes counters.drops. The names are api.Drop*.
type dropReason int

const (
	dropShort dropReason = iota
	dropBadFlags
	dropUnknownVNI
	dropUnknownPeer
	dropMalformed
	dropSpoofed
	dropTapWrite
	dropSend
	dropNoPort
	dropPlaintext
	dropSpoofedIP
	dropSpoofedARP
	dropEtherType
	dropFloodLimit
	dropFDBFull
	dropNoKey
	dropTooBig
	dropVIPFull
	dropVIPUnserved
	numDropReasons
)

var dropNames = [numDropReasons]string{
	dropShort:       api.DropShort,
	dropBadFlags:    api.DropBadFlags,
	dropUnknownVNI:  api.DropUnknownVNI,
	dropUnknownPeer: api.DropUnknownPeer,
	dropMalformed:   api.DropMalformedFrame,
	dropSpoofed:     api.DropSpoofed,
	dropTapWrite:    api.DropTapWrite,
	dropSend:        api.DropSend,
	dropNoPort:      api.DropNoPort,
	dropPlaintext:   api.DropPlaintext,
	dropSpoofedIP:   api.DropSpoofedIP,
	dropSpoofedARP:  api.DropSpoofedARP,
	dropEtherType:   api.DropEtherType,
	dropFloodLimit:  api.DropFloodLimit,
	dropFDBFull:     api.DropFDBFull,
	dropNoKey:       api.DropNoKey,
	dropVIPFull:     api.DropVIPFull,
	dropVIPUnserved: api.DropVIPUnserved,
	dropTooBig:      api.DropTooBig,
}

// counters are the statistics of one port, peer, network or host. Every
// field is updated with atomic adds, once per batch rather than once per
// frame where the data path can sum locally first.
type counters struct {
	rxFrames, rxBytes atomic.Uint64
	txFrames, txBytes atomic.Uint64
	drops             [numDropReasons]atomic.Uint64
}

func (c *counters) rx(frames, bytes int) {
	if frames > 0 {
		c.rxFrames.Add(uint64(frames))
		c.rxBytes.Add(uint64(bytes))
	}
}

func (c *counters) tx(frames, bytes int) {
	if frames > 0 {
		c.txFrames.Add(uint64(frames))
		c.txBytes.Add(uint64(bytes))
	}
}

func (c *counters) drop(r dropReason, n int) {
	if n > 0 {
		c.drops[r].Add(uint64(n))
	}
}

// snapshot copies the counters into their API form.
func (c *counters) snapshot() api.Counters {
	out := api.Counters{
		RxFrames: c.rxFrames.Load(),
		RxBytes:  c.rxBytes.Load(),
		TxFrames: c.txFrames.Load(),
		TxBytes:  c.txBytes.Load(),
	}
	for i := range c.drops {
		if v := c.drops[i].Load(); v > 0 {
			if out.Drops == nil {
				out.Drops = make(map[string]uint64)
			}
			out.Drops[dropNames[i]] = v
		}
	}
	return out
}
