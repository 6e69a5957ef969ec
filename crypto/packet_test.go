package crypto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/internal/ipv4"
)

var (
	srcAddr = [4]byte{10, 250, 0, 1}
	dstAddr = [4]byte{10, 250, 0, 2}
)

func TestWrapUnwrap(t *testing.T) {
	payload := vxlanDatagram(100, 9)
	b := make([]byte, 2000)
	n := wrap(b, payload, srcAddr, dstAddr)
	pkt := b[:n]
	want := []byte{
		0x45, 0x00, 0x00, 128, // version 4, IHL 5, total 20+8+100
		0x00, 0x00, 0x40, 0x00, // id 0, DF
		64, 17, 0, 0, // TTL, UDP, checksum (checked below)
		10, 250, 0, 1,
		10, 250, 0, 2,
		0x12, 0xb5, 0x12, 0xb5, // ports 4789
		0, 108, 0, 0, // UDP length, no checksum
	}
	got := append([]byte(nil), pkt[:InnerOverhead]...)
	got[10], got[11] = 0, 0
	if !bytes.Equal(got, want) {
		t.Fatalf("header\n got % x\nwant % x", got, want)
	}
	if ipv4.Checksum(pkt[:20], 0) != 0xffff {
		t.Fatal("ipv4 header checksum wrong")
	}
	// Independent computation of the checksum (RFC 1071 by hand).
	var sum uint32
	for i := 0; i < 20; i += 2 {
		if i != 10 {
			sum += uint32(binary.BigEndian.Uint16(pkt[i:]))
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	if uint16(^sum) != binary.BigEndian.Uint16(pkt[10:]) {
		t.Fatal("checksum differs from reference")
	}
	p, src, why := unwrap(pkt, dstAddr)
	if why != DropNone || src != srcAddr || !bytes.Equal(p, payload) {
		t.Fatalf("unwrap: %v %v", why, src)
	}
	// Trailing bytes beyond the total length (padding) are ignored.
	padded := append(append([]byte(nil), pkt...), 0, 0, 0, 0)
	if p, _, why := unwrap(padded, dstAddr); why != DropNone || !bytes.Equal(p, payload) {
		t.Fatalf("padded: %v", why)
	}
}

// kernelPacket is a VXLAN datagram as Linux sends it over a wg interface:
// a hashed source port, a UDP checksum, IP options absent, id non-zero.
func kernelPacket(payload []byte) []byte {
	b := make([]byte, InnerOverhead+len(payload))
	wrap(b, payload, srcAddr, dstAddr)
	binary.BigEndian.PutUint16(b[4:], 0x1234) // id
	binary.BigEndian.PutUint16(b[6:], 0)      // DF clear
	binary.BigEndian.PutUint16(b[20:], 54321) // source port
	binary.BigEndian.PutUint16(b[26:], 0xbeef)
	fixChecksum(b)
	return b
}

func fixChecksum(b []byte) {
	hl := int(b[0]&0xf) * 4
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], ^ipv4.Checksum(b[:hl], 0))
}

func TestUnwrapMalformed(t *testing.T) {
	payload := vxlanDatagram(64, 1)
	good := func() []byte { return kernelPacket(payload) }
	cases := []struct {
		name string
		mod  func([]byte) []byte
		want DropReason
	}{
		{"kernel packet", func(b []byte) []byte { return b }, DropNone},
		{"empty", func(b []byte) []byte { return nil }, DropShort},
		{"19 bytes", func(b []byte) []byte { return b[:19] }, DropShort},
		{"ipv6", func(b []byte) []byte { b[0] = 0x60; return b }, DropNotIPv4},
		{"ihl 4", func(b []byte) []byte { b[0] = 0x44; fixChecksum(b); return b }, DropBadHeader},
		{"total beyond packet", func(b []byte) []byte { return b[:len(b)-1] }, DropBadHeader},
		{"total below headers", func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 27); fixChecksum(b); return b }, DropBadHeader},
		{"bad checksum", func(b []byte) []byte { b[10] ^= 1; return b }, DropBadChecksum},
		{"more fragments", func(b []byte) []byte { b[6] |= 0x20; fixChecksum(b); return b }, DropFragment},
		{"fragment offset", func(b []byte) []byte { b[7] = 1; fixChecksum(b); return b }, DropFragment},
		{"tcp", func(b []byte) []byte { b[9] = 6; fixChecksum(b); return b }, DropNotUDP},
		{"other destination", func(b []byte) []byte { b[19] = 9; fixChecksum(b); return b }, DropWrongDst},
		{"other port", func(b []byte) []byte { b[23] = 1; return b }, DropWrongPort},
		{"udp length short", func(b []byte) []byte { b[24], b[25] = 0, 7; return b }, DropBadHeader},
		{"udp length long", func(b []byte) []byte { binary.BigEndian.PutUint16(b[24:], uint16(len(b))); return b }, DropBadHeader},
		{"ip options", func(b []byte) []byte {
			o := make([]byte, len(b)+4)
			copy(o, b[:20])
			copy(o[24:], b[20:])
			o[0] = 0x46
			binary.BigEndian.PutUint16(o[2:], uint16(len(o)))
			fixChecksum(o)
			return o
		}, DropNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, src, why := unwrap(tc.mod(good()), dstAddr)
			if why != tc.want {
				t.Fatalf("reason %v, want %v", why, tc.want)
			}
			if why == DropNone && (src != srcAddr || !bytes.Equal(p, payload)) {
				t.Fatal("payload or source")
			}
		})
	}
}

func TestWrapUnwrapNoAllocs(t *testing.T) {
	payload := vxlanDatagram(1400, 3)
	b := make([]byte, 2000)
	var n int
	if a := testing.AllocsPerRun(1000, func() { n = wrap(b, payload, srcAddr, dstAddr) }); a != 0 {
		t.Fatalf("wrap allocates %v", a)
	}
	if a := testing.AllocsPerRun(1000, func() {
		if _, _, why := unwrap(b[:n], dstAddr); why != DropNone {
			t.Fatal(why)
		}
	}); a != 0 {
		t.Fatalf("unwrap allocates %v", a)
	}
}

// TestQueueNoAllocs: once warm, a batch's round trip through a queue
// allocates nothing, and the queue holds no more than its limit.
func TestQueueNoAllocs(t *testing.T) {
	done := make(chan struct{})
	q := newQueue(4, 1500, done)
	payload := vxlanDatagram(1400, 3)
	var batch, out [3]*pkt
	cycle := func() {
		n := q.take(batch[:], nil)
		for _, p := range batch[:n] {
			p.n = wrap(p.buf, payload, srcAddr, dstAddr)
		}
		q.push(batch[:n])
		q.release(out[:q.pop(out[:], done)])
	}
	cycle()
	if a := testing.AllocsPerRun(1000, cycle); a != 0 {
		t.Fatalf("queue cycle allocates %v", a)
	}
	// Bounded: four pkts, then take finds none, without waiting.
	var held [8]*pkt
	if n := q.take(held[:], nil); n != 4 {
		t.Fatalf("took %d pkts of 4", n)
	}
	if q.take(held[4:], &waiter{q: q, spent: true}) != 0 {
		t.Fatal("queue not bounded")
	}
	// A waiting take gets what another goroutine releases.
	go q.release(held[:1])
	w := waiter{q: q}
	if q.take(held[4:], &w) != 1 {
		t.Fatal("waiting take missed a release")
	}
	w.release()
	close(done)
	if q.pop(out[:], done) != 0 {
		t.Fatal("pop after done")
	}
}

// TestQueueOrder: pkts come out in the order they were pushed, across
// batches and the ring's wrap-around.
func TestQueueOrder(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	q := newQueue(5, 8, done)
	var in [3]*pkt
	var out [2]*pkt
	next, want := 0, 0
	for round := 0; round < 20; round++ {
		n := q.take(in[:], nil)
		for _, p := range in[:n] {
			p.n = next
			next++
		}
		q.push(in[:n])
		for q.count > 2 {
			m := q.tryPop(out[:])
			for _, p := range out[:m] {
				if p.n != want {
					t.Fatalf("popped %d, want %d", p.n, want)
				}
				want++
			}
			q.release(out[:m])
		}
	}
}

func FuzzUnwrap(f *testing.F) {
	payload := vxlanDatagram(64, 1)
	b := make([]byte, 200)
	n := wrap(b, payload, srcAddr, dstAddr)
	f.Add(b[:n])
	f.Add(kernelPacket(payload))
	f.Add([]byte{0x45})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		p, src, why := unwrap(pkt, dstAddr)
		if why != DropNone {
			if p != nil {
				t.Fatal("payload with a drop reason")
			}
			return
		}
		// Invariants of an accepted packet: a valid header checksum, our
		// destination, port 4789, and a payload inside the packet that
		// round-trips through wrap.
		hl := int(pkt[0]&0xf) * 4
		if ipv4.Checksum(pkt[:hl], 0) != 0xffff || [4]byte(pkt[16:20]) != dstAddr || binary.BigEndian.Uint16(pkt[hl+2:]) != vxlanPort {
			t.Fatal("accepted an invalid packet")
		}
		if len(p) > len(pkt)-InnerOverhead {
			t.Fatal("payload longer than the packet")
		}
		out := make([]byte, InnerOverhead+len(p))
		wrap(out, p, src, dstAddr)
		p2, src2, why2 := unwrap(out, dstAddr)
		if why2 != DropNone || src2 != src || !bytes.Equal(p2, p) {
			t.Fatal("no fix point")
		}
	})
}

// TestHandOrder: datagrams written in batches of 1 to 64, handed on 16 at
// a time, reach wireguard-go's TUN reader, which reads concurrently with
// less room than a batch, all of them, intact and in order.
func TestHandOrder(t *testing.T) {
	d, id := stageDevice()
	defer close(d.closed)
	defer d.tun.Close()
	const total, size = 2000, 200
	out := make(chan uint32, total)
	errc := make(chan string, 1)
	go func() {
		bufs := stageBufs(48, 16+2000) // fewer than a batch of 64
		sizes := make([]int, len(bufs))
		for n := 0; n < total; {
			k, err := d.tun.Read(bufs, sizes, 16)
			if err != nil {
				errc <- err.Error()
				return
			}
			for i := 0; i < k; i++ {
				// To the peer (srcAddr), from this host (dstAddr).
				payload, _, why := unwrap(bufs[i][16:16+sizes[i]], srcAddr)
				if why != DropNone || len(payload) != size {
					errc <- fmt.Sprintf("datagram %d: %v, %d bytes", n+i, why, len(payload))
					return
				}
				seq := binary.BigEndian.Uint32(payload[encap.HeaderLen:])
				if !bytes.Equal(payload, vxlanDatagram(size, seq)) {
					errc <- fmt.Sprintf("datagram %d corrupted", seq)
					return
				}
				out <- seq
			}
			n += k
		}
	}()
	inBatches(total, func(first, n int) {
		batch := make([][]byte, n)
		for i := range batch {
			batch[i] = vxlanDatagram(size, uint32(first+i))
		}
		roomFor(t, d.txq, n, errc) // no drop when the writer outruns the reader
		if err := d.Write(batch, id); err != nil {
			t.Fatal(err)
		}
	})
	inOrder(t, out, errc, total)
	if d.Stats().TxPackets != total {
		t.Fatalf("tx packets %d of %d", d.Stats().TxPackets, total)
	}
}

// TestHandOrderRx: the receive side of TestHandOrder. Read gets every
// datagram wireguard-go's receiver wrote, intact, in order, with the
// sender's ID.
func TestHandOrderRx(t *testing.T) {
	d, id := stageDevice()
	defer close(d.closed)
	const total, size = 2000, 200
	out := make(chan uint32, total)
	errc := make(chan string, 1)
	go func() {
		bufs := stageBufs(48, encap.MaxDatagram) // fewer than a batch of 64
		sizes := make([]int, len(bufs))
		eps := make([]netip.AddrPort, len(bufs))
		for n := 0; n < total; {
			k, err := d.Read(bufs, sizes, eps)
			if err != nil {
				errc <- err.Error()
				return
			}
			for i := 0; i < k; i++ {
				p := bufs[i][:sizes[i]]
				seq := binary.BigEndian.Uint32(p[encap.HeaderLen:])
				if eps[i] != id || !bytes.Equal(p, vxlanDatagram(size, seq)) {
					errc <- fmt.Sprintf("datagram %d corrupted, or from %v", seq, eps[i])
					return
				}
				out <- seq
			}
			n += k
		}
	}()
	inBatches(total, func(first, n int) {
		batch := make([][]byte, n)
		for i := range batch {
			b := make([]byte, 16+InnerOverhead+size)
			wrap(b[16:], vxlanDatagram(size, uint32(first+i)), srcAddr, dstAddr)
			batch[i] = b
		}
		roomFor(t, d.rxq, n, errc)
		d.tun.Write(batch, 16)
	})
	inOrder(t, out, errc, total)
	if d.Stats().RxPackets != total {
		t.Fatalf("rx packets %d of %d", d.Stats().RxPackets, total)
	}
}

// inBatches calls write(first, n) for datagrams 0 to total-1 in batches
// of 1, 2, … 64 datagrams, then again from 1.
func inBatches(total int, write func(first, n int)) {
	for seq := 0; seq < total; {
		n := min(1+seq%64, total-seq)
		write(seq, n)
		seq += n
	}
}

// inOrder waits for datagrams 0 to total-1, in that order, on out,
// failing the test at the first one out of place, missing for 10 s, or
// an error the reader reported on errc.
func inOrder(t *testing.T, out <-chan uint32, errc <-chan string, total uint32) {
	t.Helper()
	for want := uint32(0); want < total; want++ {
		select {
		case err := <-errc:
			t.Fatal(err)
		case seq := <-out:
			if seq != want {
				t.Fatalf("got datagram %d, want %d", seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("datagram %d never came", want)
		}
	}
}

// roomFor waits until q has room for n more pkts, failing the test if the
// reader reported an error on errc meanwhile.
func roomFor(t *testing.T, q *queue, n int, errc chan string) {
	t.Helper()
	eventually(t, 10*time.Second, "room in the queue", func() bool {
		select {
		case err := <-errc:
			t.Fatal(err) // the reader stopped
		default:
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.count+n <= q.limit
	})
}
