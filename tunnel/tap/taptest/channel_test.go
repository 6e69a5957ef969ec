package taptest

import (
	"bytes"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/vxwire/vxwire/tunnel/tap"
)

func TestChannelDevice(t *testing.T) {
	c := NewChannelDevice(1500, 4, 8)
	frames := [][]byte{[]byte("frame-one-xxxxxx"), []byte("frame-two-xxxxxx"), make([]byte, 2000)}
	for _, f := range frames {
		if err := c.Inject(f); err != nil {
			t.Fatal(err)
		}
	}
	frames[0][0] = 'X' // the device holds a copy
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 1600), make([]byte, 1600), make([]byte, 1600)}
	sizes := make([]int, 3)
	n, err := c.Read(bufs, sizes, 10)
	if err != nil || n != 2 {
		t.Fatalf("Read = %d, %v; want 2, nil", n, err)
	}
	if got := bufs[0][10 : 10+sizes[0]]; string(got) != "frame-one-xxxxxx" {
		t.Errorf("frame 0 = %q", got)
	}
	if c.Drops() != 1 {
		t.Errorf("Drops = %d, want 1", c.Drops())
	}

	out := []byte("to-the-container")
	if n, err := c.Write([][]byte{out}); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	out[0] = 'X'
	if st := c.Stats(); st != (tap.Stats{RxReads: 1, RxFrames: 2, RxDropped: 1, TxWrites: 1, TxFrames: 1}) {
		t.Errorf("Stats = %+v", st)
	}
	select {
	case got := <-c.Written():
		if !bytes.Equal(got, []byte("to-the-container")) {
			t.Errorf("written = %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written")
	}
}

func TestChannelDeviceCloseUnblocks(t *testing.T) {
	c := NewChannelDevice(1500, 4, 1)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Wait = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after Close")
	}
	if _, err := c.Read(make([][]byte, 1), make([]int, 1), 0); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if err := c.Inject([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Inject after Close = %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
