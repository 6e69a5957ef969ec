package netstack

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// stalledAfter writes to c in 4 KiB chunks until a write makes no
// progress for a second, and returns how many bytes were written. It
// gives up at 64 MiB, far past any bound under test.
func stalledAfter(t *testing.T, c net.Conn) int {
	t.Helper()
	chunk := make([]byte, 4<<10)
	total := 0
	for total < 64<<20 {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.Write(chunk)
		total += n
		if ne := net.Error(nil); errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return total
		}
		if err != nil {
			t.Fatalf("write after %d bytes: %v", total, err)
		}
	}
	return total
}

// TestEgressTCPBuffersBounded opens an egress flow whose destination
// first reads fast and then takes nothing, and then sends what the
// container does not read: what each direction makes the gateway hold is
// bounded by TCPBufferSize (twice it, plus one copy buffer). The container's own buffers
// are set to the minimum, so what the writer gets rid of is what the
// gateway holds. Before this
// bound gVisor's defaults let each buffer take 1 MiB at once and grow to
// 4 MiB by auto-tuning (this test measured 2.1 MB and 1.05 MB): with 256
// flows per container, gigabytes of the daemon's memory for one
// container.
func TestEgressTCPBuffersBounded(t *testing.T) {
	leakCheck(t)
	far := make(chan net.Conn, 1)
	_, c := egressPair(t, nil, func(cfg *GatewayConfig) {
		cfg.Dial = func(context.Context, string, string) (net.Conn, error) {
			a, b := net.Pipe() // synchronous: holds nothing
			far <- b
			return a, nil
		}
	})
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.MinBufferSize, Max: tcp.MinBufferSize}
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.MinBufferSize, Max: tcp.MinBufferSize}
	if e := c.s.SetTransportProtocolOption(tcp.ProtocolNumber, &rcv); e != nil {
		t.Fatal(e)
	}
	if e := c.s.SetTransportProtocolOption(tcp.ProtocolNumber, &snd); e != nil {
		t.Fatal(e)
	}
	conn, err := gonet.DialContextTCP(context.Background(), c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	defer conn.Close()
	dst := <-far
	defer dst.Close()

	// What the writer got rid of: the other end's minimal buffers, the
	// gateway's copy buffer, and what gVisor holds, under twice
	// TCPBufferSize (the receive side queues up to a window of segments
	// ahead of its buffer), plus 64 KiB in flight.
	limit := 2*TCPBufferSize + tcpCopyBuf + 2*tcp.MinBufferSize + 64<<10

	// First the destination reads 16 MiB as fast as it comes, which is
	// what lets auto-tuning grow the gateway's receive buffer; then it
	// stops reading.
	const fast = 16 << 20
	read := make(chan error, 1)
	go func() {
		b := make([]byte, 64<<10)
		n := 0
		for n < fast {
			k, err := dst.Read(b)
			n += k
			if err != nil {
				read <- err
				return
			}
		}
		read <- nil
	}()
	chunk := make([]byte, 64<<10)
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for sent := 0; sent < fast; sent += len(chunk) {
		if _, err := conn.Write(chunk); err != nil {
			t.Fatalf("write at %d bytes while the destination reads: %v", sent, err)
		}
	}
	if err := <-read; err != nil {
		t.Fatalf("destination read: %v", err)
	}
	up := stalledAfter(t, conn)
	down := stalledAfter(t, dst)
	t.Logf("the gateway took %d bytes the destination did not read, %d the container did not; limit %d", up, down, limit)
	for _, d := range []struct {
		name string
		n    int
	}{{"container to destination", up}, {"destination to container", down}} {
		if d.n > limit {
			t.Errorf("%s: the gateway holds %d bytes, more than %d", d.name, d.n, limit)
		}
		if d.n < TCPBufferSize/2 {
			t.Errorf("%s: only %d bytes before the writer stalled; the path did not fill", d.name, d.n)
		}
	}
}
