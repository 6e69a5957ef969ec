package crypto

import (
	"testing"

	"golang.zx2c4.com/wireguard/device"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
	"github.com/vxwire/vxwire/internal/overhead"
)

// TestOverheadMatchesWire builds, for a container packet of the MTU the
// config allows on a 1500-byte underlay, the datagram the encrypted path
// really sends (VXLAN header and frame, wrapped in inner IPv4/UDP by wrap,
// sealed as a WireGuard transport message of wireguard-go's sizes, in
// outer IPv4/UDP) and checks that it fills the underlay exactly, so the
// numbers in package overhead (50, 60, 110) are what goes on the wire.
func TestOverheadMatchesWire(t *testing.T) {
	const underlay = 1500
	if got := overhead.WireGuardHeaderLen + overhead.WireGuardTagLen; got != device.MessageTransportSize {
		t.Fatalf("WireGuard header and tag = %d, wireguard-go sends %d", got, device.MessageTransportSize)
	}
	if config.Overhead(false) != 50 || config.Overhead(true) != 110 || TunnelOverhead != 60 || encap.Overhead != 50 {
		t.Fatalf("overheads: plain %d, encrypted %d, wireguard %d, vxlan %d; want 50, 110, 60, 50",
			config.Overhead(false), config.Overhead(true), TunnelOverhead, encap.Overhead)
	}
	for _, encrypted := range []bool{false, true} {
		mtu := underlay - config.Overhead(encrypted)
		vxlan := vxlanDatagram(encap.HeaderLen+ether.HeaderLen+mtu, 1)
		var sent int
		if !encrypted {
			sent = ipv4.MinHeaderLen + ipv4.UDPHeaderLen + len(vxlan)
		} else {
			b := make([]byte, InnerOverhead+len(vxlan))
			n := wrap(b, vxlan, [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2})
			if n > underlay-TunnelOverhead {
				t.Fatalf("inner packet %d bytes exceeds the WireGuard MTU %d", n, underlay-TunnelOverhead)
			}
			if _, _, why := unwrap(b[:n], [4]byte{10, 0, 0, 2}); why != DropNone {
				t.Fatalf("unwrap of the wrapped datagram: %v", why)
			}
			sent = ipv4.MinHeaderLen + ipv4.UDPHeaderLen + device.MessageTransportSize + n
		}
		if sent != underlay {
			t.Errorf("encrypted=%v: a %d-byte container packet goes out as %d bytes, want %d", encrypted, mtu, sent, underlay)
		}
	}
}
