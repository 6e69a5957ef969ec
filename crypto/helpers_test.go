package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vxwire/vxwire/encap"
)

// testLogger returns a logger that writes to the test log when -v is
// given with VXWIRE_TEST_LOG=1, and discards otherwise.
func testLogger(tb testing.TB) *slog.Logger {
	if os.Getenv("VXWIRE_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.tb.Log(string(b)); return len(b), nil }

// node is one host of an in-process test cluster.
type node struct {
	key    Key
	tunnel netip.Addr
	id     netip.AddrPort // the VTEP address the engine would use
	dev    *Device
	rx     chan dgram
}

type dgram struct {
	data []byte
	from netip.AddrPort
}

// newNode makes the keys and addresses of host i (1-based); start starts it.
func newNode(tb testing.TB, i int) *node {
	k, err := GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return &node{
		key:    k,
		tunnel: netip.AddrFrom4([4]byte{10, 250, 0, byte(i)}),
		id:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), encap.DefaultPort),
	}
}

// start creates n's Device on 127.0.0.1 with the given config changes and
// no peers, and attaches it.
func (n *node) start(tb testing.TB, mod func(*Config)) {
	tb.Helper()
	cfg := Config{
		PrivateKey: n.key,
		TunnelAddr: n.tunnel,
		ListenAddr: netip.MustParseAddr("127.0.0.1"),
	}
	if mod != nil {
		mod(&cfg)
	}
	d, err := New(cfg, testLogger(tb))
	if err != nil {
		tb.Fatal(err)
	}
	n.attach(tb, d)
}

// attach makes d n's device, starts a reader goroutine feeding n.rx, and
// closes d in a cleanup.
func (n *node) attach(tb testing.TB, d *Device) {
	n.dev = d
	n.rx = make(chan dgram, 1<<15)
	done := make(chan struct{})
	go n.routineRead(done)
	tb.Cleanup(func() {
		d.Close()
		<-done
	})
}

func (n *node) routineRead(done chan struct{}) {
	defer close(done)
	size := n.dev.BatchSize()
	bufs := make([][]byte, size)
	for i := range bufs {
		bufs[i] = make([]byte, encap.MaxDatagram)
	}
	sizes := make([]int, size)
	eps := make([]netip.AddrPort, size)
	for {
		k, err := n.dev.Read(bufs, sizes, eps)
		for i := 0; i < k; i++ {
			select {
			case n.rx <- dgram{append([]byte(nil), bufs[i][:sizes[i]]...), eps[i]}:
			default: // the test is not reading: drop
			}
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// peer returns n as a Peer of a device on loopback.
func (n *node) peer() Peer {
	return Peer{
		PublicKey:  n.key.Public(),
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n.dev.LocalAddr().Port()),
		TunnelAddr: n.tunnel,
		ID:         n.id,
	}
}

// connect makes each node a peer of every other (full mesh), keeping the
// rest of each node's config.
func connect(tb testing.TB, nodes ...*node) {
	tb.Helper()
	for _, n := range nodes {
		n.dev.mu.Lock()
		cfg := n.dev.cfg
		n.dev.mu.Unlock()
		cfg.Peers = nil
		for _, o := range nodes {
			if o != n {
				cfg.Peers = append(cfg.Peers, o.peer())
			}
		}
		if err := n.dev.Reconfigure(cfg); err != nil {
			tb.Fatal(err)
		}
	}
}

// vxlanDatagram returns a VXLAN-like datagram of size bytes carrying seq.
func vxlanDatagram(size int, seq uint32) []byte {
	b := make([]byte, size)
	var h encap.Header
	h.VNI = 4242
	h.Encode(b)
	binary.BigEndian.PutUint32(b[encap.HeaderLen:], seq)
	for i := encap.HeaderLen + 4; i < size; i++ {
		b[i] = byte(seq) + byte(i)
	}
	return b
}

// collect reads from n until want datagrams arrived or the deadline,
// whatever they are; receive checks them.
func (n *node) collect(want int, within time.Duration) []dgram {
	var got []dgram
	deadline := time.After(within)
	for len(got) < want {
		select {
		case d := <-n.rx:
			got = append(got, d)
		case <-deadline:
			return got
		}
	}
	return got
}

// checkDatagram tells what data is: datagram seq of first..first+count-1,
// exactly as sendBatch made it with size bytes, or a probe of establish
// (probe true). Anything else is an error: a datagram of another range
// (one the test did not send now), or one whose bytes differ from what was
// sent.
func checkDatagram(data []byte, first, count, size int) (seq uint32, probe bool, err error) {
	if len(data) < encap.HeaderLen+4 {
		return 0, false, fmt.Errorf("datagram of %d bytes", len(data))
	}
	seq = binary.BigEndian.Uint32(data[encap.HeaderLen:])
	if seq == probeSeq && isProbe(data) {
		return seq, true, nil
	}
	if int64(seq) < int64(first) || int64(seq) >= int64(first+count) {
		return seq, false, fmt.Errorf("datagram %d (%d bytes) is not one of %d..%d", seq, len(data), first, first+count-1)
	}
	if !bytes.Equal(data, vxlanDatagram(size, seq)) {
		return seq, false, fmt.Errorf("datagram %d corrupted (%d bytes, want %d)", seq, len(data), size)
	}
	return seq, false, nil
}

// receive reads n.rx until datagrams first..first+count-1 of size bytes
// from the peer with ID from all arrived, or within passed, and returns
// how many did. Every datagram read must be from that peer and pass
// checkDatagram; late probes of establish are skipped. One that arrives
// twice fails the test: WireGuard's replay window never delivers a
// datagram twice.
func (n *node) receive(tb testing.TB, from netip.AddrPort, first, count, size int, within time.Duration) int {
	tb.Helper()
	seen := make(map[uint32]bool, count)
	deadline := time.After(within)
	for len(seen) < count {
		var g dgram
		select {
		case g = <-n.rx:
		case <-deadline:
			return len(seen)
		}
		if g.from != from {
			tb.Fatalf("datagram from %v, want %v", g.from, from)
		}
		seq, probe, err := checkDatagram(g.data, first, count, size)
		if err != nil {
			tb.Fatal(err)
		}
		if probe {
			continue
		}
		if seen[seq] {
			tb.Fatalf("datagram %d delivered twice", seq)
		}
		seen[seq] = true
	}
	return len(seen)
}

// expectNothing fails if n receives anything within d.
func (n *node) expectNothing(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case g := <-n.rx:
		tb.Fatalf("received a datagram from %v, want none", g.from)
	case <-time.After(d):
	}
}

// eventually polls cond until it holds or within passes.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeSeq and probeSize make the datagrams establish sends. Tests keep
// their own sequence numbers below probeSeq.
const (
	probeSeq  = 1 << 30
	probeSize = 100
)

// isProbe reports whether data is an intact probe of establish.
func isProbe(data []byte) bool {
	return bytes.Equal(data, vxlanDatagram(probeSize, probeSeq))
}

// establish brings up the session between a and b, one direction at a
// time: two hosts that start sending to each other in the same millisecond
// both initiate, and crossed initiations fail in WireGuard until a retry
// 5 s later.
//
// It sends a probe per poll until one arrives. When the handshake takes
// longer than a poll (a loaded machine: seconds at load 16 on 2 cores),
// wireguard-go holds every probe until the session is up and then delivers
// them all, so more probes can arrive after establish returned, in what
// the test reads next: receive skips them.
func establish(tb testing.TB, a, b *node) {
	tb.Helper()
	eventually(tb, 15*time.Second, "a session", func() bool {
		sendBatch(tb, a, b.id, probeSeq, 1, probeSize)
		return len(b.collect(1, 100*time.Millisecond)) > 0
	})
	eventually(tb, 15*time.Second, "traffic back", func() bool {
		sendBatch(tb, b, a.id, probeSeq, 1, probeSize)
		return len(a.collect(1, 100*time.Millisecond)) > 0
	})
}

// Epoch returns the epoch of the preshared keys in force, and false when
// the device uses no preshared key (RotateEvery 0).
func (d *Device) Epoch() (int64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.epoch, d.ring.Enabled()
}
