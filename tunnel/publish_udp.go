package tunnel

// UDP published ports. The listener keeps one flow per client address,
// bounded in number and closed after pubUDPIdle without a datagram either
// way. A flow's upstream is a UDP socket of the gateway's netstack for a
// local target, or a relayed TCP stream (publish_relay.go) that carries
// each datagram behind a 2-byte length.

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vxwire/vxwire/internal/config"
)

// pubUDPIdle is how long a UDP flow lives without a datagram.
const pubUDPIdle = 30 * time.Second

// pubUDPFlow is one client's flow through a UDP publish.
type pubUDPFlow struct {
	up   net.Conn
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

func (pl *pubListener) routineServeUDP() {
	defer pl.wg.Done()
	var mu sync.Mutex
	flows := make(map[netip.AddrPort]*pubUDPFlow)
	defer func() {
		mu.Lock()
		for _, f := range flows {
			f.up.Close()
		}
		mu.Unlock()
	}()
	buf := copyBufs.Get().(*[pubCopyBuf]byte)
	defer copyBufs.Put(buf)
	for {
		n, from, err := pl.pc.ReadFrom(buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		client := ua.AddrPort()
		mu.Lock()
		f := flows[client]
		if f == nil {
			if len(flows) >= maxPubConns {
				mu.Unlock()
				pl.stats.refused.Add(1)
				continue
			}
			up := pl.dialTarget(config.ProtoUDP)
			if up == nil {
				mu.Unlock()
				continue
			}
			f = &pubUDPFlow{up: up}
			flows[client] = f
			pl.stats.accepted.Add(1)
			pl.stats.active.Add(1)
			go pl.routineUDPReturn(f, client, func() {
				mu.Lock()
				if flows[client] == f {
					delete(flows, client)
				}
				mu.Unlock()
			})
		}
		mu.Unlock()
		f.last.Store(time.Now().UnixNano())
		if _, err := f.up.Write(buf[:n]); err == nil {
			pl.stats.bytesIn.Add(uint64(n))
		}
	}
}

// routineUDPReturn sends the flow's replies to client until the flow
// idles out or its upstream fails, then calls gone.
func (pl *pubListener) routineUDPReturn(f *pubUDPFlow, client netip.AddrPort, gone func()) {
	defer pl.stats.active.Add(-1)
	defer gone()
	defer f.up.Close()
	defer pl.pub.crash.Recover("publish", closer(f.up))
	buf := copyBufs.Get().(*[pubCopyBuf]byte)
	defer copyBufs.Put(buf)
	to := net.UDPAddrFromAddrPort(client)
	for {
		f.up.SetReadDeadline(time.Now().Add(pubUDPIdle))
		n, err := f.up.Read(buf[:])
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < pubUDPIdle {
				continue
			}
			return
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := pl.pc.WriteTo(buf[:n], to); err == nil {
			pl.stats.bytesOut.Add(uint64(n))
		}
	}
}

// framedConn carries datagrams over a stream, each behind its length.
type framedConn struct {
	net.Conn
	rmu, wmu sync.Mutex
}

// Read returns one datagram; a datagram longer than b is truncated.
func (c *framedConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var h [2]byte
	if _, err := io.ReadFull(c.Conn, h[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(h[:]))
	k := min(n, len(b))
	if _, err := io.ReadFull(c.Conn, b[:k]); err != nil {
		return 0, err
	}
	if n > k {
		if _, err := io.CopyN(io.Discard, c.Conn, int64(n-k)); err != nil {
			return 0, err
		}
	}
	return k, nil
}

// Write sends b as one datagram of at most 65535 bytes.
func (c *framedConn) Write(b []byte) (int, error) {
	if len(b) > 0xffff {
		return 0, errors.New("datagram too large")
	}
	var h [2]byte
	binary.BigEndian.PutUint16(h[:], uint16(len(b)))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	bufs := net.Buffers{h[:], b}
	if _, err := bufs.WriteTo(c.Conn); err != nil {
		return 0, err
	}
	return len(b), nil
}
