package consensus

// Hosts outside the log. A laptop behind NAT has no vote: the voters know
// it by its WireGuard key alone and cannot reach it on the underlay. It
// still takes address blocks, and pins explicit addresses, through a
// voter, which commits the command for it:
//
//	laptop (Outside)                        voter (Node.ServeOutside)
//	Take / Pin / Unpin ─▶ TCP inside WireGuard, tunnel address → voter's tunnel address:raft_port
//	                      one OutsideRequest (JSON) ─▶ host = hostOf(source address), or refused
//	                                                   command{Host: host, ...} ─▶ propose (forwarded to the leader)
//	                      ◀─ one OutsideReply (JSON)
//
// Trust: the listener is on the voter's WireGuard inner stack, which
// sees only packets WireGuard decrypted and whose source is the sending
// peer's tunnel address (its allowed-ips), so the source address proves
// the key. hostOf admits only the configured peers without a vote, by
// that address, and names the host; a request names no host, so it can
// act for no other. The log then applies its usual rules: a Take gets a
// free block, a pin of another host's block or pin is refused, an unpin
// drops only this host's pins.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Outside request operations.
const (
	OutsideTake  = "take"
	OutsidePin   = "pin"
	OutsideUnpin = "unpin"
)

// Reasons ServeOutside refuses a request, counted by Node.Refused.
const (
	// RefusedOutsideStranger: a connection from an address that is not
	// a configured peer without a vote.
	RefusedOutsideStranger = "raft_outside_stranger"
	// RefusedOutsideMalformed: a request that does not parse, or asks
	// for an operation or values the log does not take.
	RefusedOutsideMalformed = "raft_outside_malformed"
	// RefusedOutsideBusy: a connection closed at once because too many
	// requests are being served, or too many of its host's.
	RefusedOutsideBusy = "raft_outside_busy"
	// RefusedOutsideBlocks: a take by a host that already holds
	// maxOutsideBlocks blocks of that network.
	RefusedOutsideBlocks = "raft_outside_blocks"
)

// Bounds of serving outside hosts: requests in flight, the size of one
// request, and how long a connection may take to send it.
const (
	maxOutside        = 16
	maxOutsidePerHost = 4
	maxOutsideRequest = 4 << 10
	outsideReadWait   = 5 * time.Second
	// outsideCommitWait bounds the commit of one request; a client
	// waits a little longer for the answer.
	outsideCommitWait = 8 * time.Second
)

// OutsideRequest is what a host outside the log asks a voter. It names no
// host: the voter knows the sender by its tunnel address.
type OutsideRequest struct {
	// Op is OutsideTake, OutsidePin or OutsideUnpin.
	Op string `json:"op"`
	// Network names the network.
	Network string `json:"network"`
	// Subnet and Bits are a Take's: a block Bits long of Subnet.
	Subnet netip.Prefix `json:"subnet,omitzero"`
	Bits   int          `json:"bits,omitempty"`
	// ID identifies a Take across retries (see command.ID).
	ID uint64 `json:"id,omitempty"`
	// IP and Endpoint are a pin's or an unpin's.
	IP       netip.Addr `json:"ip,omitzero"`
	Endpoint string     `json:"endpoint,omitempty"`
}

// OutsideReply is a voter's answer.
type OutsideReply struct {
	// Block is the block a Take got.
	Block netip.Prefix `json:"block,omitzero"`
	// Refused is the log's refusal, Exhausted set when a Take found no
	// free block.
	Refused   string `json:"refused,omitempty"`
	Exhausted bool   `json:"exhausted,omitempty"`
	// NoQuorum says the voter could not commit in time; Up and All are
	// its QuorumError's.
	NoQuorum bool `json:"no_quorum,omitempty"`
	Up       int  `json:"up,omitempty"`
	All      int  `json:"all,omitempty"`
	// Failed says the request was not taken (malformed).
	Failed string `json:"failed,omitempty"`
}

// parseOutsideRequest decodes one request of host and checks it as the
// log would. A request with a field it does not know (a host name, say) is
// malformed. It returns the command to propose.
func parseOutsideRequest(b []byte, host string) (command, error) {
	var r OutsideRequest
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return command{}, fmt.Errorf("malformed request: %w", err)
	}
	c := command{Network: r.Network, Host: host}
	switch r.Op {
	case OutsideTake:
		c.Op, c.Subnet, c.Bits, c.ID = opTake, r.Subnet, r.Bits, r.ID
	case OutsidePin, OutsideUnpin:
		c.Op, c.IP, c.Endpoint = opPin, r.IP, r.Endpoint
		if r.Op == OutsideUnpin {
			c.Op = opUnpin
		}
	default:
		return command{}, fmt.Errorf("unknown operation %q", r.Op)
	}
	if err := c.check(); err != nil {
		return command{}, err
	}
	return c, nil
}

// ServeOutside serves the requests of hosts outside the log on ln, a
// listener on this host's WireGuard tunnel address, until ln is closed or
// the node is. hostOf returns the host name of a configured peer without
// a vote by its tunnel address; it is called once per connection and must
// be safe for concurrent use.
func (n *Node) ServeOutside(ln net.Listener, hostOf func(netip.Addr) (string, bool)) {
	var mu sync.Mutex
	busy := make(map[string]int) // requests in flight, by host
	take := func(host string) bool {
		mu.Lock()
		defer mu.Unlock()
		if busy[host] >= maxOutsidePerHost || sum(busy) >= maxOutside {
			return false
		}
		busy[host]++
		return true
	}
	release := func(host string) {
		mu.Lock()
		defer mu.Unlock()
		if busy[host]--; busy[host] <= 0 {
			delete(busy, host)
		}
	}
	n.cfg.Crash.Go("raft outside accept", func() {
		go func() {
			<-n.done
			ln.Close()
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				select {
				case <-n.done:
					return
				case <-time.After(10 * time.Millisecond): // a failing accept must not spin
				}
				continue
			}
			host, ok := hostOf(remoteIP(c.RemoteAddr()))
			if !ok {
				n.refused.Add(RefusedOutsideStranger)
				c.Close()
				continue
			}
			if !take(host) {
				n.refused.Add(RefusedOutsideBusy)
				c.Close()
				continue
			}
			go func() {
				defer n.cfg.Crash.Recover(RecoveredConn, func() { c.Close() })
				defer release(host)
				n.serveOutside(host, c)
			}()
		}
	})
}

// maxOutsideBlocks bounds the blocks of one network a host outside the
// log may hold: enough for a laptop's endpoints many times over.
const maxOutsideBlocks = 8

// anyIPv4 contains every IPv4 block.
var anyIPv4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)

// serveOutside answers one request of host on c.
func (n *Node) serveOutside(host string, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(outsideReadWait))
	var raw json.RawMessage
	if err := json.NewDecoder(io.LimitReader(c, maxOutsideRequest)).Decode(&raw); err != nil {
		n.refused.Add(RefusedOutsideMalformed)
		return
	}
	cmd, err := parseOutsideRequest(raw, host)
	if err != nil {
		n.refused.Add(RefusedOutsideMalformed)
		n.l.Debug("refused an outside host's request", "host", host, "error", err)
		_ = c.SetDeadline(time.Now().Add(outsideReadWait))
		_ = json.NewEncoder(c).Encode(OutsideReply{Failed: err.Error()})
		return
	}
	if cmd.Op == opTake && len(n.fsm.held(cmd.Network, anyIPv4, host)) >= maxOutsideBlocks {
		// A voter runs this daemon; a host outside the log is a laptop,
		// and its key alone must not let it take a network's every block.
		n.refused.Add(RefusedOutsideBlocks)
		_ = c.SetDeadline(time.Now().Add(outsideReadWait))
		_ = json.NewEncoder(c).Encode(OutsideReply{Refused: fmt.Sprintf("host %s holds %d blocks of network %s already", host, maxOutsideBlocks, cmd.Network)})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), outsideCommitWait)
	defer cancel()
	r, err := n.propose(ctx, cmd)
	reply := OutsideReply{Block: r.Block}
	var qe *QuorumError
	var re *RefusedError
	switch {
	case errors.As(err, &re):
		reply.Refused, reply.Exhausted = re.Msg, re.Exhausted
	case errors.As(err, &qe):
		reply.NoQuorum, reply.Up, reply.All = true, qe.Up, qe.All
	case err != nil:
		reply.NoQuorum, reply.All = true, len(n.cfg.Voters)
	default:
		n.l.Info("committed for a host outside the log", "host", host, "op", cmd.Op, "network", cmd.Network, "block", r.Block.String(), "ip", cmd.IP.String())
	}
	_ = c.SetDeadline(time.Now().Add(outsideReadWait))
	_ = json.NewEncoder(c).Encode(reply)
}

// sum adds the values of m.
func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}
