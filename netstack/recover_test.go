package netstack

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/vxwire/vxwire/internal/safe"
	"github.com/vxwire/vxwire/internal/tally"
)

type flowLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *flowLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *flowLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// panickyConn is a host-side connection whose reads panic, as a bug in a
// relay would.
type panickyConn struct{ net.Conn }

func (c panickyConn) Read([]byte) (int, error) {
	var b []byte
	return int(b[1]), nil // a runtime panic
}

// crashPair is an egress pair whose first dial panics (mode "dial") or
// returns a connection whose reads panic (mode "read"); later dials reach
// the outside echo servers.
func crashPair(t *testing.T, mode string) (*Gateway, *client, *tally.Counts, *flowLog, chan error) {
	o := newOutside(t)
	var log flowLog
	counts := &tally.Counts{}
	died := make(chan error, 4)
	var first atomic.Bool
	first.Store(true)
	g, c := egressPair(t, o, func(cfg *GatewayConfig) {
		cfg.Crash = safe.Reporter{
			L:         slog.New(slog.NewTextHandler(&log, nil)),
			Died:      func(err error) { died <- err },
			Recovered: counts,
		}
		cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
			if !first.CompareAndSwap(true, false) {
				return o.dial(ctx, network, address)
			}
			if mode == "dial" {
				var counts []int
				counts[len(address)]++ // a runtime panic
			}
			hc, err := o.dial(ctx, network, address)
			if err != nil {
				return nil, err
			}
			return panickyConn{hc}, nil
		}
	})
	return g, c, counts, &log, died
}

// TestEgressTCPPanicClosesFlow checks the per-flow kind on the gateway: a
// panic while setting up or relaying one container's TCP flow resets
// that flow only, is logged with its stack and counted; the next flow
// works and the daemon is not stopped. Before this change the panic
// ended the process: handleTCP runs on a goroutine gVisor starts.
func TestEgressTCPPanicClosesFlow(t *testing.T) {
	for _, tc := range []struct{ mode, kind, frame string }{
		{"dial", RecoveredTCP, "index out of range"},
		{"read", RecoveredCopy, "panickyConn.Read"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			leakCheck(t)
			g, c, counts, log, died := crashPair(t, tc.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if conn, err := gonet.DialContextTCP(ctx, c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber); err == nil {
				// The read mode panics after the handshake: the flow is
				// then reset under the client.
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.Write([]byte("x"))
				if _, err := conn.Read(make([]byte, 1)); err == nil {
					t.Fatal("the panicking flow carried data")
				}
				conn.Close()
			}
			waitFor(t, "the panic to be counted", 5*time.Second, func() bool { return counts.Snapshot()[tc.kind] == 1 })
			for _, want := range []string{"level=ERROR", tc.frame} {
				if !strings.Contains(log.String(), want) {
					t.Errorf("log lacks %q:\n%s", want, log.String())
				}
			}
			waitFor(t, "the flow to be released", 5*time.Second, func() bool { return g.Stats().TCPFlowsOpen == 0 })
			// Probe: the next flow through the same gateway works.
			conn, err := gonet.DialContextTCP(ctx, c.s, c.addr(outsideIP, 80), ipv4.ProtocolNumber)
			if err != nil {
				t.Fatalf("dial after a recovered panic: %v", err)
			}
			echoTransfer(t, conn, 1<<10)
			conn.Close()
			select {
			case err := <-died:
				t.Fatalf("a flow's panic was reported as a death: %v", err)
			default:
			}
			waitFor(t, "the flows to close", 5*time.Second, func() bool { return g.Stats().TCPFlowsOpen == 0 })
		})
	}
}

// TestEgressUDPPanicClosesFlow is the same for a UDP flow.
func TestEgressUDPPanicClosesFlow(t *testing.T) {
	leakCheck(t)
	g, c, counts, _, died := crashPair(t, "dial")
	dst := netip.MustParseAddr("198.18.200.2")
	send := func(port uint16, msg string) (string, error) {
		conn, err := gonet.DialUDP(c.s, nil, ptr(c.addr(dst, port)), ipv4.ProtocolNumber)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			return "", err
		}
		buf := make([]byte, 100)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := send(53, "one"); err == nil {
		t.Fatalf("the panicking flow answered %q", got)
	}
	waitFor(t, "the panic to be counted", 5*time.Second, func() bool { return counts.Snapshot()[RecoveredUDP] == 1 })
	waitFor(t, "the flow to be released", 5*time.Second, func() bool { return g.Stats().UDPFlowsOpen == 0 })
	if got, err := send(54, "two"); err != nil || got != "pong:two" {
		t.Fatalf("flow after a recovered panic: %q %v", got, err)
	}
	select {
	case err := <-died:
		t.Fatalf("a flow's panic was reported as a death: %v", err)
	default:
	}
}
