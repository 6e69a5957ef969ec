package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/internal/safe"
)

// TestStateRefused sends whole state messages through the delegate, as
// memberlist hands them over, and checks that each hostile one is refused
// under its reason and leaves no record behind, while a valid one is taken.
func TestStateRefused(t *testing.T) {
	now := uint64(time.Now().UnixNano())
	good := func() hostState {
		return hostState{Host: "h2", Version: version{Epoch: now, Counter: 1},
			Records: []Record{rec("h2", "blue", "web", "10.77.0.20")}}
	}
	tests := []struct {
		name   string
		mod    func(*hostState)
		reason string
	}{
		{"far-future epoch", func(s *hostState) { s.Version.Epoch = now + uint64(time.Hour) }, RefusedVersion},
		{"counter near wrap", func(s *hostState) { s.Version.Counter = 1<<64 - 1 }, RefusedVersion},
		{"host name with control characters", func(s *hostState) {
			s.Host = "h\x002"
			s.Records[0].Host = s.Host
		}, RefusedHost},
		{"record name not a DNS label", func(s *hostState) { s.Records[0].Name = "Web_1" }, RefusedRecord},
		{"alias not a DNS label", func(s *hostState) { s.Records[0].Aliases = []string{"a.b"} }, RefusedRecord},
		{"network not a DNS label", func(s *hostState) { s.Records[0].Network = "BLUE" }, RefusedRecord},
		{"multicast mac", func(s *hostState) { s.Records[0].MAC = [6]byte{1, 0, 0x5e, 0, 0, 1} }, RefusedRecord},
		{"ipv6 address", func(s *hostState) { s.Records[0].IP = netip.MustParseAddr("fd00::1") }, RefusedRecord},
		{"network vni below the range", func(s *hostState) {
			s.Networks = []HostNetwork{{Host: "h2", Name: "red", VNI: 5, Subnet: netip.MustParsePrefix("10.78.0.0/24")}}
		}, RefusedNetwork},
		{"network subnet with host bits", func(s *hostState) {
			s.Networks = []HostNetwork{{Host: "h2", Name: "red", VNI: 300, Subnet: netip.MustParsePrefix("10.78.0.5/24")}}
		}, RefusedNetwork},
		{"network name not a DNS label", func(s *hostState) {
			s.Networks = []HostNetwork{{Host: "h2", Name: "Red!", VNI: 300, Subnet: netip.MustParsePrefix("10.78.0.0/24")}}
		}, RefusedNetwork},
		{"too many records", func(s *hostState) {
			for i := range MaxRecordsPerHost {
				s.Records = append(s.Records, rec("h2", "blue", fmt.Sprintf("r%d", i), "10.77.0.21"))
			}
		}, RefusedRecordCap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCluster(t, "me", nil)
			s := good()
			tt.mod(&s)
			(*delegate)(c).NotifyMsg(encode(nil, &message{Type: msgState, State: s}))
			if got := c.Refused()[tt.reason]; got != 1 {
				t.Errorf("refused[%s] = %d, want 1 (all: %v)", tt.reason, got, c.Refused())
			}
			if rs := c.Records(); len(rs) != 0 {
				t.Errorf("refused state left records: %v", names(rs))
			}
			// The probe: the valid state through the same door is taken.
			(*delegate)(c).NotifyMsg(encode(nil, &message{Type: msgState, State: good()}))
			if !hasExactly(c, "h2/web") {
				t.Errorf("valid state not taken: %v", names(c.Records()))
			}
		})
	}
}

// TestHostTableBounded fills the host table through push/pull and checks
// that hosts beyond MaxHosts are refused and counted.
func TestHostTableBounded(t *testing.T) {
	c := newTestCluster(t, "me", nil)
	now := uint64(time.Now().UnixNano())
	var m message
	m.Type = msgSync
	for i := range MaxHosts + 10 {
		h := fmt.Sprintf("h%d", i)
		m.States = append(m.States, hostState{Host: h, Version: version{Epoch: now, Counter: 1}})
	}
	(*delegate)(c).MergeRemoteState(encode(nil, &m), false)
	c.mu.Lock()
	n := len(c.tab.hosts)
	c.mu.Unlock()
	if n != MaxHosts {
		t.Errorf("host table holds %d hosts, want %d", n, MaxHosts)
	}
	if got := c.Refused()[RefusedHostCap]; got != 11 {
		t.Errorf("refused[%s] = %d, want 11 (this host takes one place)", RefusedHostCap, got)
	}
}

// TestNoticeRefused sends "changed, pull me" notices through the
// delegate, as a member holding the secret could: one whose host name the
// config rules refuse, one from the far future, and notices for more
// invented hosts. Before notices were checked like states, each was
// queued to be gossiped on to every host (a queue that grew by one per
// invented name and was sorted on every gossip tick); now each is refused
// under its reason and none is queued. The probe: a valid notice, about
// a member, is queued.
func TestNoticeRefused(t *testing.T) {
	c := newTestCluster(t, "me", nil)
	now := uint64(time.Now().UnixNano())
	notice := func(host string, epoch uint64) []byte {
		return encode(nil, &message{Type: msgNotice, State: hostState{Host: host, Version: version{Epoch: epoch, Counter: 1}}})
	}
	base := c.queue.len()
	c.mu.Lock()
	c.tab.live["h2"] = true // as memberlist's join event makes it
	c.mu.Unlock()
	(*delegate)(c).NotifyMsg(notice("h2", now))
	if got := c.queue.len(); got != base+1 {
		t.Fatalf("a valid notice was not queued: queue %d, want %d", got, base+1)
	}
	(*delegate)(c).NotifyMsg(notice("h\x003", now))
	(*delegate)(c).NotifyMsg(notice("h4", now+uint64(time.Hour)))
	if r := c.Refused(); r[RefusedHost] != 1 || r[RefusedVersion] != 1 {
		t.Errorf("refused %v, want one %s and one %s", r, RefusedHost, RefusedVersion)
	}
	for i := range 2 * MaxHosts {
		(*delegate)(c).NotifyMsg(notice(fmt.Sprintf("x%d", i), now))
	}
	if got := c.queue.len(); got != base+1 {
		t.Errorf("queue holds %d messages after notices for %d invented hosts, want %d", got, 2*MaxHosts, base+1)
	}
	if c.Refused()[RefusedUnknownHost] != 2*MaxHosts {
		t.Errorf("notices beyond the bound not counted: %v", c.Refused())
	}
}

// TestOldNetworkMessagesDropped: network definitions gossiped by a host
// of an earlier version (they now live in the Raft log) are decoded and
// dropped, not counted as malformed and not taken; a malformed networks
// message is still counted.
func TestOldNetworkMessagesDropped(t *testing.T) {
	c := newTestCluster(t, "me", nil)
	p := netip.MustParsePrefix("10.77.0.0/24")
	v := netVersion{1, "h2"}
	e := netEntry{Def: config.Network{Name: "blue", VNI: 300, Subnet: p, Gateway: p.Addr().Next()}, Version: v, Created: v}
	(*delegate)(c).NotifyMsg(encode(nil, &message{Type: msgNets, Nets: []netEntry{e}}))
	(*delegate)(c).MergeRemoteState(encode(nil, &message{Type: msgSync, Nets: []netEntry{e}}), false)
	if r := c.Refused(); len(r) != 0 {
		t.Errorf("networks of an earlier version refused: %v", r)
	}
	if got := (*delegate)(c).LocalState(false); bytes.Contains(got, []byte("blue")) {
		t.Errorf("the dropped definition is passed on in push/pull: %q", got)
	}
	(*delegate)(c).NotifyMsg([]byte{msgNets, 1, 1, 'n'})
	if got := c.Refused()[RefusedMalformed]; got != 1 {
		t.Errorf("refused[%s] = %d after a truncated networks message, want 1", RefusedMalformed, got)
	}
}

// TestStrangerRefused puts the gate in front of a real transport on
// 127.0.0.1 that admits only 127.0.0.3, and sends it a UDP packet and a
// TCP connection from 127.0.0.2 (refused, counted, the connection closed)
// and from 127.0.0.3 (the probe: both arrive). SetPeers moves the gate.
func TestStrangerRefused(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	nt, err := netTransport(&memberlist.Config{BindAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	ft := newFilterTransport(nt, func() { refused.Add(1) }, safe.Reporter{})
	defer ft.Shutdown()
	ft.setAllowed([]netip.Addr{netip.MustParseAddr("127.0.0.3")})
	dst := fmt.Sprintf("127.0.0.1:%d", nt.GetAutoBindPort())

	send := func(from string) {
		t.Helper()
		c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(from+":0")), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("hello from " + from))
	}
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(from + ":0"))}
		c, err := d.Dial("tcp4", dst)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	recvPacket := func() string {
		select {
		case p := <-ft.PacketCh():
			return p.From.String()
		case <-time.After(500 * time.Millisecond):
			return ""
		}
	}

	send("127.0.0.2")
	if from := recvPacket(); from != "" {
		t.Errorf("packet from stranger passed (from %s)", from)
	}
	send("127.0.0.3")
	if from := recvPacket(); !strings.HasPrefix(from, "127.0.0.3:") {
		t.Errorf("packet from the peer did not pass (got %q)", from)
	}
	sc := dial("127.0.0.2")
	sc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := sc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("stranger's connection not closed: %v", err)
	}
	sc.Close()
	pc := dial("127.0.0.3")
	select {
	case c := <-ft.StreamCh():
		if !strings.HasPrefix(c.RemoteAddr().String(), "127.0.0.3:") {
			t.Errorf("stream from %s", c.RemoteAddr())
		}
		c.Close()
	case <-time.After(2 * time.Second):
		t.Error("peer's connection did not pass")
	}
	pc.Close()
	if got := refused.Load(); got != 2 {
		t.Errorf("refused %d, want 2", got)
	}
	ft.setAllowed([]netip.Addr{netip.MustParseAddr("127.0.0.2")})
	send("127.0.0.2")
	if from := recvPacket(); !strings.HasPrefix(from, "127.0.0.2:") {
		t.Errorf("after setAllowed, packet from 127.0.0.2 did not pass (got %q)", from)
	}
}

// TestAliveGate: a member cannot introduce a node at an address that is
// not a configured peer; a node at a peer's address is let in.
func TestAliveGate(t *testing.T) {
	c := newTestCluster(t, "me", nil, func(c *Config) {
		c.Peers = []netip.Addr{netip.MustParseAddr("127.0.0.3")}
		c.Secret = []byte("a cluster secret of 32 bytes!!!")
	})
	g := (*aliveGate)(c)
	if err := g.NotifyAlive(&memberlist.Node{Name: "evil", Addr: net.IPv4(127, 0, 0, 2)}); err == nil {
		t.Error("node at a stranger's address let in")
	}
	if err := g.NotifyAlive(&memberlist.Node{Name: "peer", Addr: net.IPv4(127, 0, 0, 3)}); err != nil {
		t.Errorf("node at a peer's address refused: %v", err)
	}
	if got := c.Refused()[RefusedStranger]; got != 1 {
		t.Errorf("refused[%s] = %d, want 1", RefusedStranger, got)
	}
}

// TestStreamsDialFromBindAddr: streams leave from the bind address, so a
// host with a separate gossip_address reaches its peers' gates from the
// address they admit. Before, the kernel picked the source, which on a
// host with several addresses could be one the peer refuses.
func TestStreamsDialFromBindAddr(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // earlier tests' members may still finish a probe
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nt, err := netTransport(&memberlist.Config{BindAddr: "127.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	ft := newFilterTransport(nt, func() {}, safe.Reporter{})
	defer ft.Shutdown()
	for _, local := range []string{"127.0.0.7", "127.0.0.8"} {
		ft.local = netip.MustParseAddr(local)
		c, err := ft.DialAddressTimeout(memberlist.Address{Addr: ln.Addr().String()}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got.String() != local {
			t.Errorf("stream from %s, want %s", got, local)
		}
		s.Close()
		c.Close()
	}
}

// TestPeersNeedSecret: gossip with a peer gate and no secret is refused
// at New, whatever built the config; config.Load refuses such a file
// with a FILE:LINE error, and this keeps any other caller from running
// gossip that takes records from anyone. The probe: the same config with
// a secret starts.
func TestPeersNeedSecret(t *testing.T) {
	cfg := Config{NodeName: "me", BindAddr: loopback, Port: -1, Peers: []netip.Addr{netip.MustParseAddr("127.0.0.3")}}
	if c, err := New(cfg, slog.New(slog.DiscardHandler)); err == nil {
		c.Close()
		t.Fatal("gossip with peers and no secret started")
	}
	cfg.Secret = []byte("a cluster secret of 32 bytes!!!")
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("with a secret: %v", err)
	}
	c.Close()
}
