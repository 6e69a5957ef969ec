package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// errMismatch marks an upstream answer that is not for the query sent.
var errMismatch = errors.New("upstream answer does not match the query")

// upstreamBufs holds 64 KiB buffers for upstream answers. Forwarding is
// the slow path, but a buffer per forwarded query would still churn the
// heap under load; the pool keeps them. Buffers hold no pointers.
var upstreamBufs = sync.Pool{New: func() any { return new([maxMsgSize]byte) }}

// forward sends the query msg (parsed into q) to each upstream in turn and
// appends the first usable answer to out[:0], with the client's ID and cut
// to limit bytes. An upstream that fails, times out or answers SERVFAIL or
// REFUSED is skipped; when none is usable the reply is SERVFAIL. ctx
// cancels the exchange (Close).
func (s *Server) forward(ctx context.Context, msg []byte, q *query, out []byte, limit int) ([]byte, result) {
	fq := append([]byte(nil), msg...)
	id := uint16(rand.Uint32()) // unpredictable, so off-path answers are not accepted
	binary.BigEndian.PutUint16(fq, id)
	buf := upstreamBufs.Get().(*[maxMsgSize]byte)
	defer upstreamBufs.Put(buf)
	for i, up := range s.upstreams {
		if ctx.Err() != nil {
			break
		}
		resp, err := s.exchange(ctx, up, fq, q, buf[:])
		if err != nil {
			s.warn("upstream failed", up, err)
			continue
		}
		if rc := resp[3] & 0xF; rc == rcodeServFail || rc == rcodeRefused {
			if s.l.Enabled(ctx, slog.LevelDebug) && i < len(s.upstreams)-1 {
				s.l.Debug("upstream refused, trying the next", "peer", up)
			}
			continue
		}
		return s.relay(out, msg, q, resp, limit), resForwarded
	}
	var r reply
	r.start(out, msg, q, limit, true)
	return r.finish(q, s.flags(0), rcodeServFail), resServFail
}

// relay copies an upstream answer to out with the client's ID. An answer
// larger than limit becomes header, question and OPT with TC set, so the
// client retries over TCP.
func (s *Server) relay(out, msg []byte, q *query, resp []byte, limit int) []byte {
	if len(resp) <= limit {
		out = append(out[:0], resp...)
		binary.BigEndian.PutUint16(out, q.id)
		return out
	}
	var r reply
	r.start(out, msg, q, limit, true)
	r.tc = true
	flags := binary.BigEndian.Uint16(resp[2:]) &^ (flagQR | opcodeMask | flagRD | flagCD | 0xF)
	return r.finish(q, flags, int(resp[3]&0xF))
}

// exchange runs one upstream attempt: UDP, then TCP if the UDP answer is
// truncated, both within one Timeout. The answer is in buf.
func (s *Server) exchange(ctx context.Context, up string, fq []byte, q *query, buf []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.exchangeOn(ctx, "udp", up, fq, q, buf)
	if err == nil && binary.BigEndian.Uint16(resp[2:])&flagTC != 0 {
		resp, err = s.exchangeOn(ctx, "tcp", up, fq, q, buf)
	}
	return resp, err
}

// exchangeOn sends fq to up over network and reads the matching answer
// into buf. Over UDP, answers that do not match are ignored until the
// deadline, as a spoofed or late datagram may arrive first.
func (s *Server) exchangeOn(ctx context.Context, network, up string, fq []byte, q *query, buf []byte) ([]byte, error) {
	c, err := s.dial(ctx, network, up)
	if err != nil {
		return nil, fmt.Errorf("cannot dial %s %s: %w", network, up, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if network == "udp" {
		if _, err := c.Write(fq); err != nil {
			return nil, fmt.Errorf("cannot send to %s: %w", up, err)
		}
		for {
			n, err := c.Read(buf)
			if err != nil {
				return nil, fmt.Errorf("no answer from %s: %w", up, err)
			}
			if matches(buf[:n], fq, q) {
				return buf[:n], nil
			}
		}
	}
	wb := make([]byte, 2, 2+len(fq))
	binary.BigEndian.PutUint16(wb, uint16(len(fq)))
	if _, err := c.Write(append(wb, fq...)); err != nil {
		return nil, fmt.Errorf("cannot send to %s over tcp: %w", up, err)
	}
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return nil, fmt.Errorf("no answer from %s over tcp: %w", up, err)
	}
	n := int(binary.BigEndian.Uint16(buf))
	if _, err := io.ReadFull(c, buf[:n]); err != nil {
		return nil, fmt.Errorf("short answer from %s over tcp: %w", up, err)
	}
	if !matches(buf[:n], fq, q) {
		return nil, fmt.Errorf("%s over tcp: %w", up, errMismatch)
	}
	return buf[:n], nil
}

// matches reports whether resp answers fq: same ID, a response to QUERY,
// and the same question (name compared case-insensitively). An error
// answer without a question also matches.
func matches(resp, fq []byte, q *query) bool {
	if len(resp) < headerLen || resp[0] != fq[0] || resp[1] != fq[1] {
		return false
	}
	f := binary.BigEndian.Uint16(resp[2:])
	if f&flagQR == 0 || f&opcodeMask != 0 {
		return false
	}
	switch binary.BigEndian.Uint16(resp[4:]) {
	case 0:
		return f&0xF != rcodeSuccess
	case 1:
	default:
		return false
	}
	if len(resp) < q.qend {
		return false
	}
	a, b := resp[headerLen:q.qend-4], fq[headerLen:q.qend-4]
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return string(resp[q.qend-4:q.qend]) == string(fq[q.qend-4:q.qend])
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// warn logs an upstream problem at most once per warnInterval, and every
// one at Debug.
// up may be empty when no upstream is involved.
func (s *Server) warn(msg, up string, err error) {
	level := slog.LevelWarn
	if !s.warnRate.allow() {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	if up == "" {
		s.l.Log(ctx, level, msg, "error", err)
		return
	}
	s.l.Log(ctx, level, msg, "peer", up, "error", err)
}
