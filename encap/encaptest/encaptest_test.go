package encaptest

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/encap"
)

func bufs(n int) ([][]byte, []int, []netip.AddrPort) {
	b := make([][]byte, n)
	for i := range b {
		b[i] = make([]byte, encap.MaxDatagram)
	}
	return b, make([]int, n), make([]netip.AddrPort, n)
}

func TestConnAddresses(t *testing.T) {
	n := NewNetwork()
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	a, b := n.Conn(lo), n.Conn(lo)
	if a == b || a.LocalAddr() == b.LocalAddr() || a.LocalAddr().Port() == 0 {
		t.Fatalf("port 0 gave %v and %v", a.LocalAddr(), b.LocalAddr())
	}
	fixed := netip.MustParseAddrPort("10.0.0.1:4789")
	c := n.Conn(fixed)
	if n.Conn(fixed) != c {
		t.Fatal("Conn of a bound address returned a new conn")
	}
	c.Close()
	if d := n.Conn(fixed); d == c {
		t.Fatal("Conn after Close returned the closed conn")
	}
	if got := n.Conn(netip.AddrPort{}).LocalAddr(); !got.Addr().IsLoopback() {
		t.Fatalf("invalid address bound to %v", got)
	}
}

func TestInjectAndRecord(t *testing.T) {
	n := NewNetwork()
	a := n.Conn(netip.MustParseAddrPort("10.0.0.1:4789"))
	b := n.Conn(netip.MustParseAddrPort("10.0.0.2:4789"))
	spoof := netip.MustParseAddrPort("192.0.2.9:1234")
	if !b.Inject(spoof, []byte("raw")) {
		t.Fatal("Inject dropped")
	}
	rb, sizes, eps := bufs(4)
	k, err := b.Read(rb, sizes, eps)
	if err != nil || k != 1 || string(rb[0][:sizes[0]]) != "raw" || eps[0] != spoof {
		t.Fatalf("Read = %d, %v, %q from %v", k, err, rb[0][:sizes[0]], eps[0])
	}

	a.Record(true)
	msg := []byte("hello")
	nowhere := netip.MustParseAddrPort("10.0.0.99:4789")
	if err := a.Write([][]byte{msg, msg}, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := a.Write([][]byte{msg}, nowhere); err != nil {
		t.Fatal(err)
	}
	msg[0] = 'j' // the fake must have copied
	sent := a.Sent()
	if len(sent) != 3 || sent[2].Dst != nowhere || sent[0].Src != a.LocalAddr() || string(sent[0].Data) != "hello" {
		t.Fatalf("Sent = %+v", sent)
	}
	if len(a.Sent()) != 0 {
		t.Fatal("Sent did not clear the log")
	}
	k, err = b.Read(rb, sizes, eps)
	if err != nil || k != 2 || string(rb[1][:sizes[1]]) != "hello" {
		t.Fatalf("Read = %d, %v", k, err)
	}
	if st := a.Stats(); st.Sent != 3 || st.NoRoute != 1 {
		t.Fatalf("a stats = %+v", st)
	}
	if st := b.Stats(); st.Received != 3 {
		t.Fatalf("b stats = %+v", st)
	}
}

func TestQueueFull(t *testing.T) {
	n := NewNetworkQueue(4)
	a := n.Conn(netip.MustParseAddrPort("10.0.0.1:1"))
	b := n.Conn(netip.MustParseAddrPort("10.0.0.2:1"))
	batch := make([][]byte, 10)
	for i := range batch {
		batch[i] = []byte{byte(i)}
	}
	if err := a.Write(batch, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.DroppedFull != 6 {
		t.Fatalf("DroppedFull = %d, want 6", st.DroppedFull)
	}
	rb, sizes, eps := bufs(8)
	k, err := b.Read(rb, sizes, eps)
	if err != nil || k != 4 {
		t.Fatalf("Read = %d, %v", k, err)
	}
	for i := 0; i < k; i++ {
		if !bytes.Equal(rb[i][:sizes[i]], batch[i]) {
			t.Fatalf("datagram %d = %x", i, rb[i][:sizes[i]])
		}
	}
}

func TestReadArgs(t *testing.T) {
	c := NewNetwork().Conn(netip.AddrPort{})
	rb, sizes, eps := bufs(2)
	if _, err := c.Read(rb, sizes[:1], eps); !errors.Is(err, encap.ErrBatchArgs) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Read([][]byte{make([]byte, 10)}, sizes, eps); !errors.Is(err, encap.ErrShortBuffer) {
		t.Fatalf("err = %v", err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	defer goleak.VerifyNone(t)
	c := NewNetwork().Conn(netip.AddrPort{})
	done := make(chan error, 1)
	go func() {
		rb, sizes, eps := bufs(1)
		_, err := c.Read(rb, sizes, eps)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if c.Inject(netip.AddrPort{}, []byte{1}) {
		t.Fatal("Inject into a closed conn succeeded")
	}
}

// TestAllocs checks that the fake itself allocates nothing per batch in
// steady state, so engine allocation tests can run on it.
func TestAllocs(t *testing.T) {
	n := NewNetwork()
	a, b := n.Conn(netip.AddrPort{}), n.Conn(netip.AddrPort{})
	batch := make([][]byte, 32)
	for i := range batch {
		batch[i] = make([]byte, 1400)
	}
	rb, sizes, eps := bufs(32)
	run := func() {
		if err := a.Write(batch, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(batch); {
			k, err := b.Read(rb, sizes, eps)
			if err != nil {
				t.Fatal(err)
			}
			got += k
		}
	}
	run()
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Fatalf("Write+Read allocate %v times, want 0", allocs)
	}
}
