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
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/relay"
)

// pubUDPIdle is how long a UDP flow lives without a datagram.
const pubUDPIdle = 30 * time.Second

// routineServeUDP relays the publish's datagrams (relay.ServeDatagrams)
// until the listener closes.
func (pl *pubListener) routineServeUDP() {
	defer pl.wg.Done()
	relay.ServeDatagrams(pl.pc, relay.Datagrams{
		Idle:     pubUDPIdle,
		MaxFlows: maxPubConns,
		Counters: &pl.stats.Counters,
		Dial: func() (net.Conn, error) {
			if up := pl.dialTarget(config.ProtoUDP); up != nil {
				return up, nil
			}
			return nil, errNoTarget
		},
		Go: func(up net.Conn, fn func()) {
			go func() {
				defer pl.pub.crash.Recover("publish", closer(up))
				fn()
			}()
		},
	})
}

// errNoTarget is why a UDP flow of a publish did not open: dialTarget
// counted the reason.
var errNoTarget = errors.New("no target reachable")

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
