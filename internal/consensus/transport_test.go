package consensus

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

// TestHandshakeSlotsPerAddress: a process on an admitted address without
// the secret (on a peer's machine) opens more idle connections than there
// are handshake slots, as one that wants to keep the members' new
// connections out would. Before slots were shared out by address, it
// held all 64, each for up to 5 s, and a member's connection was closed
// at once; now it holds at most maxHandshakesPerAddr, the rest are closed
// and counted as raft_busy, and a member from its own address completes
// its handshake (the probe).
func TestHandshakeSlotsPerAddress(t *testing.T) {
	secret := []byte("a cluster secret of 32 bytes!!!")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused tally.Counts
	serve := func(kind byte, c net.Conn) { _, _ = c.Write([]byte{kind}); c.Close() }
	lo, other := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	s, err := newStreamLayer(ln, secret, quiet(), safe.Reporter{L: quiet()}, serve,
		gateOpts{allowed: []netip.Addr{lo, other}, refused: &refused})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const n = maxHandshakes + 6
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(other, 0))}
	for range n {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	want := uint64(n - maxHandshakesPerAddr)
	for deadline := time.Now().Add(5 * time.Second); refused.Snapshot()[RefusedBusy] < want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("refused %v, want %s %d", refused.Snapshot(), RefusedBusy, want)
		}
	}

	_, client, err := tlsConfigs(secret)
	if err != nil {
		t.Fatal(err)
	}
	member := &streamLayer{client: client, local: net.TCPAddrFromAddrPort(netip.AddrPortFrom(lo, 0))}
	c, err := member.dial(ln.Addr().String(), kindProbe, 2*time.Second)
	if err != nil {
		t.Fatalf("a member's handshake while 127.0.0.2 holds its share of the slots: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != kindProbe {
		t.Fatalf("probe answer %q, %v", b[:], err)
	}
}
