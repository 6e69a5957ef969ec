package crypto

// The data path of a Device:
//
//	Write(dgrams, dst)                               caller's goroutine
//	  table (atomic snapshot): dst ID → peer tunnel address
//	  take up to 16 pkts from txq's free list (bounded wait), wrap each
//	  (inner IPv4/UDP header + copy of the datagram), push them to txq;
//	  again for the next 16
//	memTUN.Read                                      wireguard-go RoutineReadFromTUN
//	  pop up to BatchSize pkts, copy into wireguard-go's buffers, release
//	  wireguard-go: allowed-ips → peer, encrypt, send through the bind
//	  (udpBind on Linux: sendmmsg with UDP GSO, raw system calls)
//
//	wireguard-go: receive through the bind (recvmmsg, UDP GRO), decrypt,
//	  allowed-ips check of the inner source against the sending peer
//	memTUN.Write                                     wireguard-go, one goroutine per peer
//	  unwrap: validate the inner header; source tunnel address → peer ID
//	  copy the datagram into a pkt taken from rxq (bounded wait); push
//	  every 16
//	Read(bufs, sizes, eps)                           caller's reader goroutine
//	  pop up to len(bufs) pkts, copy out, eps[i] = sender's ID, release
//
// Each queue operation moves a batch under one lock and wakes the
// consumer once (see queue). wireguard-go encrypts and decrypts in
// parallel, one worker per CPU, between its TUN reader and its per-peer
// senders and receivers.
//
// Both queues are bounded (queueLen packets); a full queue makes the
// producer wait up to queueWait, then drop and count. The copy in Write
// is what lets the caller reuse its buffers as soon as Write returns.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/netstack"
	"golang.zx2c4.com/wireguard/device"
)

var (
	// ErrUnknownPeer is returned by Write for a destination that is the ID
	// of no configured peer.
	ErrUnknownPeer = errors.New("no peer with this id")

	// ErrQueueFull is returned by Write when every datagram of the batch
	// was dropped because the queue to WireGuard stayed full.
	ErrQueueFull = errors.New("queue to wireguard full")
)

// Device is an embedded WireGuard interface carrying VXLAN datagrams to
// peers, presented as an encap.Conn so that the engine cannot tell an
// encrypted path from a plain one.
//
// Write and Read may be called concurrently, Write from any number of
// goroutines, Read from one at a time. Reconfigure, Status, Stats and
// Close are safe for concurrent use with everything, including each
// other. After Close, Read returns net.ErrClosed and Write drops.
type Device struct {
	l    *slog.Logger
	wg   *device.Device
	tun  *memTUN
	name string
	mtu  int
	// clockOffset is Config.clockOffset, fixed at New.
	clockOffset time.Duration

	// txq carries wrapped inner packets from Write to wireguard-go, rxq
	// datagrams from wireguard-go to Read; see queue.
	txq, rxq *queue
	// rxBatch is Read's room for the pkts it pops (one reader at a time).
	rxBatch [maxBatch]*pkt

	// table is the data path's view of the peers, swapped whole by
	// Reconfigure and loaded once per batch.
	table atomic.Pointer[table]
	// port is the UDP port actually bound, for LocalAddr.
	port  atomic.Uint32
	stats counters

	// mu serializes configuration changes (Reconfigure, the rotation
	// goroutine's key installs) and guards the fields below. The data path
	// never takes it.
	mu    sync.Mutex
	cfg   Config
	ring  Ring
	epoch int64 // epoch of the installed preshared keys, if ring enabled
	// greeting holds the peers routineGreet is forcing handshakes with.
	greeting map[Key]bool
	// received counts, per peer, the inner packets that peer's keys
	// authenticated (see table.bySrc); kept across Reconfigure.
	received map[Key]*atomic.Uint64

	// inner is the stack on the tunnel address (Config.InnerPort), nil
	// when off; fixed at New.
	inner *netstack.InnerStack

	uapi     *uapiServer
	kick     chan struct{} // wakes routineRotate after a Reconfigure
	closed   chan struct{} // closed when Close starts
	done     chan struct{} // closed when Close has finished
	closing  sync.Once
	routines sync.WaitGroup
}

var _ encap.Conn = (*Device)(nil)

// table maps between peer IDs and tunnel addresses. It is immutable but
// for the counters its sources point to.
type table struct {
	local [4]byte
	byID  map[netip.AddrPort][4]byte // ID → tunnel address
	bySrc map[[4]byte]source         // tunnel address → peer
}

// source is a peer as the receive path sees it: its ID, and the counter
// of inner packets received from it, which PeerAlive reads to tell a
// working session from a dead one.
type source struct {
	id       netip.AddrPort
	received *atomic.Uint64
}

// unlockedNewTable returns the table of c, reusing the receive counters
// of peers that stay and dropping those of peers that went. d.mu must be
// held, or d not yet shared.
func (d *Device) unlockedNewTable(c Config) *table {
	t := &table{
		local: c.TunnelAddr.As4(),
		byID:  make(map[netip.AddrPort][4]byte, len(c.Peers)),
		bySrc: make(map[[4]byte]source, len(c.Peers)),
	}
	counters := make(map[Key]*atomic.Uint64, len(c.Peers))
	for _, p := range c.Peers {
		r := d.received[p.PublicKey]
		if r == nil {
			r = new(atomic.Uint64)
		}
		counters[p.PublicKey] = r
		a := p.TunnelAddr.As4()
		t.byID[p.ID] = a
		t.bySrc[a] = source{id: p.ID, received: r}
	}
	d.received = counters
	return t
}

// New starts a WireGuard device for cfg: it binds the UDP port, installs
// the peers with the preshared keys of the current epoch, starts the
// rotation goroutine and, when cfg.Name is set, serves the UAPI socket.
// Logs go to l. The caller owns the Device and must Close it.
func New(cfg Config, l *slog.Logger) (_ *Device, err error) {
	cfg, err = cfg.normalized()
	if err != nil {
		return nil, fmt.Errorf("invalid tunnel config: %w", err)
	}
	if l == nil {
		l = slog.Default()
	}
	success := false
	d := &Device{
		l:           l,
		name:        cfg.Name,
		mtu:         cfg.MTU,
		clockOffset: cfg.clockOffset,
		cfg:         cfg,
		ring:        NewRing(cfg.Secret, cfg.RotateEvery),
		kick:        make(chan struct{}, 1),
		closed:      make(chan struct{}),
		done:        make(chan struct{}),
	}
	if d.name == "" {
		d.name = "vxwire"
	}
	d.txq = newQueue(queueLen, cfg.MTU, d.closed)
	d.rxq = newQueue(queueLen, cfg.MTU-InnerOverhead, d.closed)
	d.table.Store(d.unlockedNewTable(cfg))
	d.tun = newMemTUN(d)
	if cfg.InnerPort != 0 {
		if d.inner, err = netstack.NewInnerStack(cfg.TunnelAddr, cfg.MTU, d.sendInner, l.With("component", "inner"), cfg.Crash); err != nil {
			return nil, err
		}
		defer func() {
			if !success {
				d.inner.Close()
			}
		}()
	}

	d.wg = device.NewDevice(d.tun, newBind(cfg.ListenAddr), wgLogger(l))
	defer func() {
		if !success {
			d.closing.Do(func() { close(d.closed) })
			d.wg.Close()
		}
	}()

	d.epoch = d.ring.Primary(d.now())
	var b strings.Builder
	b.WriteString(uapiDevice(cfg))
	for _, p := range cfg.Peers {
		uapiPeer(&b, p, d.psk(p.PublicKey))
	}
	if err := d.wg.IpcSet(b.String()); err != nil {
		return nil, fmt.Errorf("cannot configure wireguard: %w", err)
	}
	if err := d.wg.Up(); err != nil {
		return nil, fmt.Errorf("cannot listen on udp port %d: %w", cfg.ListenPort, err)
	}
	if err := d.readPort(); err != nil {
		return nil, err
	}
	if cfg.Name != "" {
		if d.uapi, err = listenUAPI(cfg.Name, cfg.SocketDir, d.wg, l, cfg.Crash); err != nil {
			return nil, err
		}
	}
	d.routines.Add(1)
	cfg.Crash.Go("wireguard rotate", d.routineRotate)
	success = true
	l.Info("wireguard device up", "port", d.port.Load(), "peers", len(cfg.Peers), "psk", d.ring.Enabled())
	return d, nil
}

// psk returns the preshared key for the peer with key k in the installed
// epoch. d.mu must be held, or d not yet shared.
func (d *Device) psk(k Key) Key {
	return d.ring.PeerPSK(d.epoch, d.cfg.PrivateKey.Public(), k)
}

// now is the time on this host's clock: the real time, or in tests a
// clock Config.clockOffset ahead of it.
func (d *Device) now() time.Time { return time.Now().Add(d.clockOffset) }

// readPort records the port wireguard-go bound (it may have picked one).
func (d *Device) readPort() error {
	s, err := d.wg.IpcGet()
	if err != nil {
		return fmt.Errorf("cannot read wireguard state: %w", err)
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			var port uint32
			if _, err := fmt.Sscan(v, &port); err == nil {
				d.port.Store(port)
			}
			return nil
		}
	}
	return nil
}

// Write wraps each datagram of bufs in an inner IPv4/UDP packet to the
// peer whose ID is dst and queues it for encryption. The buffers are
// borrowed for the duration of the call only and are not modified.
// Datagrams that do not fit the inner MTU are dropped; when the queue is
// full Write waits briefly (queueWait, at most once per call), then drops.
// Drops are counted in Stats; Write returns an error only when it queued
// nothing: ErrUnknownPeer, ErrQueueFull or net.ErrClosed.
func (d *Device) Write(bufs [][]byte, dst netip.AddrPort) error {
	select {
	case <-d.closed:
		d.stats.drop(DropClosed, len(bufs))
		return net.ErrClosed
	default:
	}
	tab := d.table.Load()
	to, ok := tab.byID[unmapAddrPort(dst)]
	if !ok {
		d.stats.drop(DropUnknownPeer, len(bufs))
		return ErrUnknownPeer
	}
	q := d.txq
	f := newFiller(q)
	defer f.done()
	sent, bytes, full := 0, 0, 0
	for i, b := range bufs {
		if len(b)+InnerOverhead > q.size {
			d.stats.drop(DropTooBig, 1)
			continue
		}
		p := f.next(len(bufs) - i)
		if p == nil {
			full++ // after one wait per call, the rest drops at once
			continue
		}
		p.n = wrap(p.buf, b, tab.local, to)
		sent++
		bytes += len(b)
	}
	d.stats.drop(DropQueueFull, full)
	d.stats.txPackets.Add(uint64(sent))
	d.stats.txBytes.Add(uint64(bytes))
	if sent == 0 && full > 0 {
		return ErrQueueFull
	}
	return nil
}

// Read waits for decrypted datagrams and stores up to len(bufs) of them:
// datagram i in bufs[i][:sizes[i]], sent by the peer whose ID is eps[i].
// Every datagram was authenticated by WireGuard as coming from that peer.
// Buffers must be encap.MaxDatagram long and sizes and eps at least as
// long as bufs (encap.CheckReadArgs). It returns net.ErrClosed after
// Close. It must not be called from two goroutines at once.
func (d *Device) Read(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if err := encap.CheckReadArgs(bufs, sizes, eps); err != nil {
		return 0, err
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	select {
	case <-d.closed:
		return 0, net.ErrClosed
	default:
	}
	q := d.rxq
	batch := d.rxBatch[:min(len(bufs), len(d.rxBatch))]
	n := q.pop(batch, d.closed)
	if n == 0 {
		return 0, net.ErrClosed
	}
	bytes := 0
	for i, p := range batch[:n] {
		sizes[i] = copy(bufs[i], p.buf[:p.n])
		eps[i] = p.from
		bytes += sizes[i]
	}
	q.release(batch[:n])
	d.stats.rxPackets.Add(uint64(n))
	d.stats.rxBytes.Add(uint64(bytes))
	return n, nil
}

// Inner returns the stack on the tunnel address, or nil when
// Config.InnerPort is 0. Its packets cross the tunnel like VXLAN's, to
// whichever peer's tunnel address they are sent; WireGuard drops the
// others. Inbound, it gets only what a peer's key authenticated and whose
// source is that peer's tunnel address.
func (d *Device) Inner() *netstack.InnerStack { return d.inner }

// sendInner queues an IPv4 packet of the inner stack for encryption,
// dropping it (counted) when the queue stays full: TCP retransmits.
func (d *Device) sendInner(b []byte) {
	q := d.txq
	if len(b) > q.size {
		d.stats.drop(DropTooBig, 1)
		return
	}
	w := waiter{q: q}
	defer w.release()
	var one [1]*pkt
	if q.take(one[:], &w) == 0 {
		d.stats.drop(DropQueueFull, 1)
		return
	}
	one[0].n = copy(one[0].buf, b)
	q.push(one[:])
	d.stats.innerTx.Add(1)
}

// BatchSize is the number of datagrams wireguard-go moves per call, the
// batch callers should pass to Read and Write.
func (d *Device) BatchSize() int { return d.wg.BatchSize() }

// LocalAddr is the tunnel's UDP address: ListenAddr (or the unspecified
// IPv4 address) and the bound port.
func (d *Device) LocalAddr() netip.AddrPort {
	d.mu.Lock()
	a := d.cfg.ListenAddr
	d.mu.Unlock()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(a, uint16(d.port.Load()))
}

// Stats returns a copy of the data-path counters.
func (d *Device) Stats() Stats { return d.stats.snapshot() }

// Close stops the rotation goroutine and the UAPI socket (removing its
// file), closes the WireGuard device and its UDP socket, and makes a
// pending or later Read return net.ErrClosed. It is safe to call more than
// once and always returns nil.
func (d *Device) Close() error {
	first := false
	d.closing.Do(func() {
		first = true
		// Under mu, so that PeerAlive, which starts routines under mu,
		// either sees closed or has added to routines before the Wait
		// below.
		d.mu.Lock()
		close(d.closed)
		d.mu.Unlock()
	})
	if !first {
		<-d.done
		return nil
	}
	defer close(d.done)
	if d.uapi != nil {
		d.uapi.close()
	}
	d.routines.Wait()
	if d.inner != nil {
		d.inner.Close()
	}
	d.wg.Close()
	d.l.Info("wireguard device closed")
	return nil
}
