package tunnel

// The trust boundary between a container and the switch. A container is
// hostile: whatever it writes to its TAP is checked against what vxwire
// gave it before the switch looks at the destination.
//
//	source MAC              the port's own                 else spoofed
//	EtherType               IPv4 or ARP only               else ethertype
//	IPv4 source address     the port's own                 else spoofed_ip
//	ARP sender MAC and IP   the port's own (IP 0.0.0.0 is  else spoofed_arp
//	                        an RFC 5227 probe and allowed)
//	broadcast, unknown      within the port's flood rate   else flood_limit
//	unicast
//
// The gateway port is the daemon's own netstack and is trusted.

import (
	"encoding/binary"
	"time"

	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// dropNone is what admit returns for a frame the port may send.
const dropNone = numDropReasons

// Offsets into an Ethernet frame of the fields admit checks.
const (
	ipv4SrcOff   = ether.HeaderLen + ipv4.OffSrc
	arpSHAOff    = ether.HeaderLen + ether.ARPOffSHA
	arpSPAOff    = ether.HeaderLen + ether.ARPOffSPA
	arpHeaderEnd = ether.HeaderLen + ether.ARPLen
)

// ownIPv4 reports whether frame, of type typ, is IPv4 from p's own
// address: the common case, small enough to be inlined into the switch
// loop, which calls admit for everything else.
func (p *port) ownIPv4(frame []byte, typ uint16) bool {
	return typ == ether.TypeIPv4 && len(frame) >= ether.HeaderLen+ipv4.MinHeaderLen &&
		[4]byte(frame[ipv4SrcOff:ipv4SrcOff+4]) == p.ip4
}

// admit checks a frame of type typ that port p (not the gateway) read
// from its container, whose source MAC has already been checked, and
// returns why it must be dropped, or dropNone.
func (p *port) admit(frame []byte, typ uint16) dropReason {
	switch typ {
	case ether.TypeIPv4:
		if len(frame) < ether.HeaderLen+ipv4.MinHeaderLen {
			return dropMalformed
		}
		if [4]byte(frame[ipv4SrcOff:ipv4SrcOff+4]) != p.ip4 {
			return dropSpoofedIP
		}
		return dropNone
	case ether.TypeARP:
		if len(frame) < arpHeaderEnd {
			return dropMalformed
		}
		a := frame[ether.HeaderLen:]
		if binary.BigEndian.Uint16(a[ether.ARPOffHType:ether.ARPOffPType]) != ether.ARPHTypeEthernet ||
			binary.BigEndian.Uint16(a[ether.ARPOffPType:ether.ARPOffHLen]) != ether.TypeIPv4 ||
			a[ether.ARPOffHLen] != ether.ARPHLen || a[ether.ARPOffPLen] != ether.ARPPLen {
			return dropMalformed
		}
		if MAC(frame[arpSHAOff:arpSHAOff+6]) != p.mac {
			return dropSpoofedARP
		}
		if spa := [4]byte(frame[arpSPAOff : arpSPAOff+4]); spa != p.ip4 && spa != [4]byte{} {
			return dropSpoofedARP
		}
		return dropNone
	}
	return dropEtherType
}

// floodBucket is a token bucket that limits the broadcast and unknown
// unicast frames of one port, which every peer and every local port of
// the network receive. Only the port's read goroutine touches it, so it
// needs neither a lock nor atomics.
type floodBucket struct {
	rate   float64 // tokens per second; 0 means unlimited
	burst  float64
	tokens float64
	last   int64 // unix nanoseconds of the last refill
}

// newFloodBucket returns a full bucket of burst tokens that refills at
// rate per second ([host] flood_rate and flood_burst); rate 0 is no limit.
func newFloodBucket(rate, burst int) floodBucket {
	burst = max(burst, 1)
	return floodBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// refill adds the tokens earned since the last refill, up to the burst.
func (b *floodBucket) refill(now int64) {
	if b.last != 0 && now > b.last {
		b.tokens += float64(now-b.last) * b.rate / float64(time.Second)
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
}

// take reports whether one more frame may be flooded, and spends a token
// if so.
func (b *floodBucket) take() bool {
	if b.rate == 0 {
		return true
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
