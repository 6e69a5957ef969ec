package tunneltest

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/netstack"
)

func key(t *testing.T) crypto.Key {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readOne(t *testing.T, c *CryptoConn) ([]byte, netip.AddrPort) {
	t.Helper()
	bufs := [][]byte{make([]byte, encap.MaxDatagram)}
	sizes, eps := make([]int, 1), make([]netip.AddrPort, 1)
	n, err := c.Read(bufs, sizes, eps)
	if err != nil || n != 1 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	return bufs[0][:sizes[0]], eps[0]
}

func TestCryptoConn(t *testing.T) {
	n := NewCryptoNetwork()
	ka, kb, kc := key(t), key(t), key(t)
	idA, idB := netip.MustParseAddrPort("198.18.0.1:4789"), netip.MustParseAddrPort("198.18.0.2:4789")
	a, err := n.Open(crypto.Config{PrivateKey: ka, MTU: 1440, Peers: []crypto.Peer{{PublicKey: kb.Public(), ID: idB}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := n.Open(crypto.Config{PrivateKey: kb, Peers: []crypto.Peer{{PublicKey: ka.Public(), ID: idA}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := n.Open(crypto.Config{PrivateKey: ka}); !errors.Is(err, ErrKeyInUse) {
		t.Fatalf("second Open with one key = %v", err)
	}

	// A datagram arrives from the ID the receiver gave the sender.
	if err := a.Write([][]byte{[]byte("hello")}, idB); err != nil {
		t.Fatal(err)
	}
	if d, from := readOne(t, b); string(d) != "hello" || from != idA {
		t.Fatalf("read %q from %v", d, from)
	}
	// Unknown destination, oversized datagram.
	if err := a.Write([][]byte{{1}}, netip.MustParseAddrPort("198.18.0.9:4789")); !errors.Is(err, crypto.ErrUnknownPeer) {
		t.Fatalf("Write to an unknown ID = %v", err)
	}
	a.Write([][]byte{make([]byte, 1440-crypto.InnerOverhead+1)}, idB)
	// A sender whose key b lacks is dropped at b.
	c, err := n.Open(crypto.Config{PrivateKey: kc, Peers: []crypto.Peer{{PublicKey: kb.Public(), ID: idB}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([][]byte{[]byte("stranger")}, idB)
	sa, sb := a.Stats(), b.Stats()
	if sa.TxPackets != 1 || sa.Drops[crypto.DropUnknownPeer] != 1 || sa.Drops[crypto.DropTooBig] != 1 {
		t.Errorf("a's stats %+v", sa)
	}
	if sb.RxPackets != 1 || sb.Drops[crypto.DropUnknownSource] != 1 {
		t.Errorf("b's stats %+v", sb)
	}
	if st := a.Status(); len(st) != 1 || st[0].ID != idB || st[0].TxBytes != 5 {
		t.Errorf("a's status %+v", st)
	}

	// Reconfigure: b learns c's key; a changed MTU needs a restart.
	if err := b.Reconfigure(crypto.Config{PrivateKey: kb, Peers: []crypto.Peer{{PublicKey: kc.Public(), ID: idA}}}); err != nil {
		t.Fatal(err)
	}
	c.Write([][]byte{[]byte("now known")}, idB)
	if d, from := readOne(t, b); string(d) != "now known" || from != idA {
		t.Fatalf("read %q from %v", d, from)
	}
	if err := b.Reconfigure(crypto.Config{PrivateKey: kb, MTU: 1300}); !errors.Is(err, crypto.ErrRestartRequired) {
		t.Fatalf("Reconfigure with a new MTU = %v", err)
	}

	b.Close()
	if _, err := b.Read([][]byte{make([]byte, encap.MaxDatagram)}, []int{0}, []netip.AddrPort{{}}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if err := b.Write([][]byte{{1}}, idA); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if n.Conn(kb.Public()) != nil {
		t.Fatal("a closed conn is still on the network")
	}
}

func TestGateway(t *testing.T) {
	g := NewGateway(netstack.GatewayConfig{MTU: 1450}, 8, 8)
	if g.MTU() != 1450 {
		t.Fatalf("MTU %d", g.MTU())
	}
	pc, err := g.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := g.UDPAddr(53)
	if !ok || addr.Port() == 0 {
		t.Fatalf("UDPAddr(53) = %v, %v", addr, ok)
	}
	if _, ok := g.TCPAddr(53); ok {
		t.Fatal("TCPAddr without ListenTCP")
	}
	ln, err := g.ListenTCP(53)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if _, _, err := pc.ReadFrom(make([]byte, 1)); err == nil {
		t.Fatal("udp socket open after Close")
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("tcp listener open after Close")
	}
	if err := g.Inject([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Inject after Close = %v", err)
	}
}
