package tunnel

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// putFrame writes f into slot i of b as a frame read from a port.
func putFrame(b *batch, i int, f []byte) {
	b.sizes[i] = copy(b.bufs[i][encap.HeaderLen:], f)
}

// ipv4Frame is an IPv4 frame from MAC src and address from to dst.
func ipv4Frame(dst, src MAC, from string) []byte {
	f := make([]byte, ether.HeaderLen+ipv4.MinHeaderLen+8)
	(&EthHeader{Dst: dst, Src: src, Type: ether.TypeIPv4}).Encode(f)
	f[ether.HeaderLen] = 0x45
	a := netip.MustParseAddr(from).As4()
	copy(f[ipv4SrcOff:], a[:])
	return f
}

// arpFrame is an ARP packet of op from src, claiming sha and spa, for tpa.
func arpFrame(op uint16, dst, src, sha MAC, spa, tpa string) []byte {
	f := make([]byte, ether.HeaderLen+ether.ARPLen)
	(&EthHeader{Dst: dst, Src: src, Type: ether.TypeARP}).Encode(f)
	a := ARP{Op: op, SHA: sha, SPA: netip.MustParseAddr(spa), TPA: netip.MustParseAddr(tpa)}
	a.Encode(f[ether.HeaderLen:])
	return f
}

// typed is a frame from src of EtherType typ with a payload of n bytes.
func typed(src MAC, typ uint16, n int) []byte {
	f := make([]byte, ether.HeaderLen+n)
	(&EthHeader{Dst: Broadcast, Src: src, Type: typ}).Encode(f)
	return f
}

// TestPortAntiSpoofing sends one frame at a time from container a
// (10.77.0.10) and checks what the switch does with it: the attacks are
// dropped and counted by reason, and the same kind of frame with a's own
// addresses goes through.
func TestPortAntiSpoofing(t *testing.T) {
	ma, mb := macOf("10.77.0.10"), macOf("10.77.0.11")
	gw := macOf("10.77.0.1")
	notIPv4ARP := arpFrame(ether.ARPReply, Broadcast, ma, ma, "10.77.0.10", "10.77.0.11")
	binary.BigEndian.PutUint16(notIPv4ARP[ether.HeaderLen+2:], ether.TypeIPv6)
	vlan := typed(ma, 0x8100, 46)
	binary.BigEndian.PutUint16(vlan[ether.HeaderLen+2:], ether.TypeIPv4) // a tagged IPv4 frame
	tests := []struct {
		name  string
		frame []byte
		drop  dropReason // dropNone: forwarded to b
	}{
		{"ipv4 own source", ipv4Frame(mb, ma, "10.77.0.10"), dropNone},
		{"ipv4 forged source", ipv4Frame(mb, ma, "10.77.0.99"), dropSpoofedIP},
		{"ipv4 source of another container", ipv4Frame(mb, ma, "10.77.0.11"), dropSpoofedIP},
		{"ipv4 source of the gateway", ipv4Frame(mb, ma, "10.77.0.1"), dropSpoofedIP},
		{"ipv4 unspecified source", ipv4Frame(mb, ma, "0.0.0.0"), dropSpoofedIP},
		{"ipv4 header cut short", ipv4Frame(mb, ma, "10.77.0.10")[:ether.HeaderLen+10], dropMalformed},
		{"arp reply of its own", arpFrame(ether.ARPReply, mb, ma, ma, "10.77.0.10", "10.77.0.11"), dropNone},
		{"gratuitous arp of its own", arpFrame(ether.ARPRequest, Broadcast, ma, ma, "10.77.0.10", "10.77.0.10"), dropNone},
		{"arp probe (sender 0.0.0.0)", arpFrame(ether.ARPRequest, Broadcast, ma, ma, "0.0.0.0", "10.77.0.10"), dropNone},
		{"arp reply claiming the gateway", arpFrame(ether.ARPReply, mb, ma, ma, "10.77.0.1", "10.77.0.11"), dropSpoofedARP},
		{"arp reply claiming another container", arpFrame(ether.ARPReply, mb, ma, ma, "10.77.0.11", "10.77.0.11"), dropSpoofedARP},
		{"gratuitous arp claiming the gateway", arpFrame(ether.ARPRequest, Broadcast, ma, ma, "10.77.0.1", "10.77.0.1"), dropSpoofedARP},
		{"arp with the gateway's MAC inside", arpFrame(ether.ARPReply, mb, ma, gw, "10.77.0.10", "10.77.0.11"), dropSpoofedARP},
		{"arp cut short", arpFrame(ether.ARPReply, mb, ma, ma, "10.77.0.10", "10.77.0.11")[:ether.HeaderLen+20], dropMalformed},
		{"arp not ethernet/ipv4", notIPv4ARP, dropMalformed},
		{"ipv6", typed(ma, ether.TypeIPv6, 60), dropEtherType},
		{"802.1Q tag", vlan, dropEtherType},
		{"802.1ad tag", typed(ma, 0x88a8, 46), dropEtherType},
		{"lldp", typed(ma, 0x88cc, 46), dropEtherType},
		{"length field (802.3)", typed(ma, 46, 46), dropEtherType},
		{"source MAC of another container", ipv4Frame(mb, mb, "10.77.0.11"), dropSpoofed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, devs := hotPathEngine(t)
			p := e.ports[epKey{"blue", "a"}]
			b := e.sw.poolFor(p.net.mtu).get()
			putFrame(b, 0, tc.frame)
			e.sw.switchFromPort(p, b, 1)
			got := dropNone
			for r := range p.stats.drops {
				if p.stats.drops[r].Load() > 0 {
					got = dropReason(r)
				}
			}
			if got != tc.drop {
				t.Fatalf("drop reason %v, want %v", name(got), name(tc.drop))
			}
			if got != dropNone && e.sw.host.drops[got].Load() != 1 {
				t.Errorf("host counter of %s not counted", name(got))
			}
			if delivered := devs["h1-b"].written; (tc.drop == dropNone) != (delivered == 1) {
				t.Errorf("b got %d frames", delivered)
			}
		})
	}
}

func name(r dropReason) string {
	if r == dropNone {
		return "none"
	}
	return dropNames[r]
}

// TestGatewayPortTrusted checks that the gateway port, the daemon's own
// netstack, still sends frames with sources other than its own address:
// egress replies carry the remote server's address.
func TestGatewayPortTrusted(t *testing.T) {
	e, devs := hotPathEngine(t)
	gw := e.networks["blue"].gw
	b := e.sw.poolFor(gw.net.mtu).get()
	putFrame(b, 0, ipv4Frame(macOf("10.77.0.10"), gw.mac, "192.0.2.7"))
	e.sw.switchFromPort(gw, b, 1)
	if devs["h1-a"].written != 1 {
		t.Fatalf("a got %d frames from the gateway, want 1", devs["h1-a"].written)
	}
}

// TestFloodLimit floods broadcasts from a port whose bucket holds 5
// frames: 5 go out, the rest are counted as flood_limit, while ARP that
// proxy ARP answers and unicast to a known MAC are not limited.
func TestFloodLimit(t *testing.T) {
	e, devs := hotPathEngine(t, func(c *config.Config) { c.Host.FloodRate, c.Host.FloodBurst = 1, 5 })
	p := e.ports[epKey{"blue", "a"}]
	ma, mb := macOf("10.77.0.10"), macOf("10.77.0.11")
	b := e.sw.poolFor(p.net.mtu).get()
	for i := range 64 {
		putFrame(b, i, ipv4Frame(Broadcast, ma, "10.77.0.10"))
	}
	e.sw.switchFromPort(p, b, 64)
	if got := p.stats.drops[dropFloodLimit].Load(); got != 59 {
		t.Errorf("flood_limit drops = %d, want 59", got)
	}
	if got := devs["h1-b"].written; got != 5 {
		t.Errorf("b got %d broadcasts, want 5", got)
	}
	// The bucket is empty now; proxy ARP and known unicast still work.
	for i := range 64 {
		if i%2 == 0 {
			putFrame(b, i, arpFrame(ether.ARPRequest, Broadcast, ma, ma, "10.77.0.10", "10.77.0.11"))
		} else {
			putFrame(b, i, ipv4Frame(mb, ma, "10.77.0.10"))
		}
	}
	before := devs["h1-a"].written
	e.sw.switchFromPort(p, b, 64)
	if got := p.stats.drops[dropFloodLimit].Load(); got != 59 {
		t.Errorf("flood_limit drops = %d after proxy ARP and unicast, want still 59", got)
	}
	if got := devs["h1-a"].written - before; got != 32 {
		t.Errorf("a got %d ARP replies, want 32", got)
	}
	if got := devs["h1-b"].written; got != 5+32 {
		t.Errorf("b got %d frames, want 37", got)
	}
}

func TestFloodBucketRefill(t *testing.T) {
	b := newFloodBucket(1000, 10)
	b.refill(1)
	for range 10 {
		if !b.take() {
			t.Fatal("a full bucket refused a frame")
		}
	}
	if b.take() {
		t.Fatal("an empty bucket gave a frame")
	}
	b.refill(1 + 5_000_000) // 5 ms at 1000/s: 5 tokens
	n := 0
	for b.take() {
		n++
	}
	if n != 5 {
		t.Errorf("5 ms refilled %d tokens, want 5", n)
	}
	b.refill(1 + 60_000_000_000) // a minute: capped at the burst
	n = 0
	for b.take() {
		n++
	}
	if n != 10 {
		t.Errorf("a long pause refilled %d tokens, want the burst 10", n)
	}
	if u := newFloodBucket(0, 0); !u.take() {
		t.Error("rate 0 must mean no limit")
	}
}

// TestEncryptedWithoutKeyNoCrash switches frames of an encrypted network
// on a host without a WireGuard key, as a network replicated from a host
// with one used to be applied: before, the first frame to a remote
// container called Write on a nil connection and took the daemon down.
// Now it is dropped and counted as no_key.
func TestEncryptedWithoutKeyNoCrash(t *testing.T) {
	e, _ := hotPathEngine(t)
	nv := *e.sw.snap.Load().byVNI[256]
	nv.encrypted = true
	snap := *e.sw.snap.Load()
	snap.byVNI = map[uint32]*netView{256: &nv}
	e.sw.snap.Store(&snap)
	p := e.ports[epKey{"blue", "a"}]
	remote := MAC{2, 0, 0, 0, 0, 0x20}
	e.networks["blue"].fdb.learn(remote, nil, e.peers["h2"], 1)
	b := e.sw.poolFor(p.net.mtu).get()
	putFrame(b, 0, ipv4Frame(remote, p.mac, "10.77.0.10"))
	e.sw.switchFromPort(p, b, 1)
	if got := e.sw.host.drops[dropNoKey].Load(); got != 1 {
		t.Fatalf("no_key drops = %d, want 1", got)
	}
}
