package netstack

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/safe"
)

// Two inner stacks wired back to back, as two hosts' tunnels are: TCP and
// UDP cross between their addresses, and a packet for another address is
// not taken.
func TestInnerStackPair(t *testing.T) {
	a1, a2 := netip.MustParseAddr("100.82.1.1"), netip.MustParseAddr("100.82.9.2")
	var s1, s2 *InnerStack
	ready := make(chan struct{})
	fwd := func(to **InnerStack) func([]byte) {
		return func(p []byte) { <-ready; (*to).Deliver(p) }
	}
	s1, err := NewInnerStack(a1, 1420, fwd(&s2), nil, safe.Reporter{})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err = NewInnerStack(a2, 1420, fwd(&s1), nil, safe.Reporter{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	close(ready)

	ln, err := s2.ListenTCP(7946)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s1.DialTCP(ctx, netip.AddrPortFrom(a2, 7946))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := make([]byte, 100_000)
	for i := range msg {
		msg[i] = byte(i)
	}
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
		t.Fatalf("tcp echo: %v", err)
	}
	if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort(); ra.Addr().Unmap() != a2 {
		t.Fatalf("remote %v", ra)
	}

	u1, err := s1.ListenUDP(7946)
	if err != nil {
		t.Fatal(err)
	}
	defer u1.Close()
	u2, err := s2.ListenUDP(7946)
	if err != nil {
		t.Fatal(err)
	}
	defer u2.Close()
	if _, err := u1.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(a2, 7946))); err != nil {
		t.Fatal(err)
	}
	u2.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 100)
	n, from, err := u2.ReadFrom(b)
	if err != nil || string(b[:n]) != "ping" || from.(*net.UDPAddr).AddrPort().Addr().Unmap() != a1 {
		t.Fatalf("udp: %q from %v: %v", b[:n], from, err)
	}

	// A datagram to another address is not taken; the same one to a2,
	// delivered after it, is the first u2 reads.
	datagram := func(dst netip.Addr, payload string) []byte {
		u := make([]byte, 8+len(payload))
		binary.BigEndian.PutUint16(u[0:], 7946)
		binary.BigEndian.PutUint16(u[2:], 7946)
		binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
		copy(u[8:], payload)
		return ipv4Packet(a1, dst, 17, u)
	}
	s2.Deliver(datagram(netip.MustParseAddr("100.82.9.3"), "stray"))
	s2.Deliver(datagram(a2, "mine"))
	u2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := u2.ReadFrom(b); err != nil || string(b[:n]) != "mine" {
		t.Fatalf("after a datagram to another address: read %q: %v", b[:n], err)
	}
}
