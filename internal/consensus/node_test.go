package consensus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/vxwire/vxwire/internal/consensus/consensustest"
)

var testSubnet = netip.MustParsePrefix("10.77.0.0/24")

// freePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(t testing.TB, n int) []uint16 {
	t.Helper()
	var out []uint16
	for _, a := range consensustest.FreeAddrs(t, n) {
		out = append(out, a.Port())
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// cluster starts n nodes named h1..hn with the given secret.
func cluster(t testing.TB, n int, secret string) []*Node {
	t.Helper()
	ports := freePorts(t, n)
	var voters []Voter
	for i, p := range ports {
		voters = append(voters, Voter{Name: fmt.Sprintf("h%d", i+1), Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p)})
	}
	var nodes []*Node
	for _, v := range voters {
		nd, err := New(Config{Name: v.Name, Bind: v.Addr, Voters: voters, Secret: []byte(secret), Dir: t.TempDir(), Fast: true}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes = append(nodes, nd)
	}
	return nodes
}

func TestTakeDistinctBlocks(t *testing.T) {
	nodes := cluster(t, 3, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seen := map[netip.Prefix]string{}
	for i := range 6 {
		nd := nodes[i%3]
		b, err := nd.Take(ctx, "blue", testSubnet, 28)
		if err != nil {
			t.Fatalf("%s: take: %v", nd.cfg.Name, err)
		}
		if o, dup := seen[b]; dup {
			t.Fatalf("block %s given to %s and %s", b, o, nd.cfg.Name)
		}
		seen[b] = nd.cfg.Name
	}
	// Every replica agrees on the owners once applied.
	for b, host := range seen {
		for _, nd := range nodes {
			deadline := time.Now().Add(5 * time.Second)
			for {
				o, ok := nd.Owner("blue", b.Addr().Next())
				if ok && o.Host == host && o.Prefix == b {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: block %s owned by %+v (%v), want %s", nd.cfg.Name, b, o, ok, host)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

func TestPinRefusedInOtherBlock(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := nodes[0].Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	ip := b.Addr().Next().Next()
	if err := nodes[1].Pin(ctx, "blue", ip, "x"); !IsRefused(err) {
		t.Fatalf("pin of %s in h1's block %s by h2: %v, want a refusal", ip, b, err)
	}
	if err := nodes[0].Pin(ctx, "blue", ip, "x"); err != nil {
		t.Fatalf("pin of %s in its own block: %v", ip, err)
	}
	free := netip.MustParseAddr("10.77.0.200")
	if err := nodes[1].Pin(ctx, "blue", free, "y"); err != nil {
		t.Fatalf("pin of a free address: %v", err)
	}
	if err := nodes[0].Pin(ctx, "blue", free, "z"); !IsRefused(err) {
		t.Fatalf("second pin of %s: %v, want a refusal", free, err)
	}
}

// TestNoQuorum: with one of two voters down, no block can be taken and
// the error says how many hosts are reachable.
func TestNoQuorum(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := nodes[0].Take(ctx, "blue", testSubnet, 28); err != nil {
		t.Fatal(err)
	}
	nodes[1].Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	_, err := nodes[0].Take(ctx2, "blue", testSubnet, 28)
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("take with 1 of 2 voters: %v, want ErrNoQuorum", err)
	}
	if want := "1 of 2 hosts reachable"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestStrangerRefused: a host with the wrong secret, naming itself as a
// voter at the address of a real one, cannot get a command committed, and
// its probes are refused, while a member's probe is answered.
func TestStrangerRefused(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := nodes[0].Take(ctx, "blue", testSubnet, 28); err != nil {
		t.Fatal(err)
	}
	// The stranger knows the peer list but not the secret.
	port := freePorts(t, 1)[0]
	voters := append([]Voter(nil), nodes[0].cfg.Voters...)
	voters = append(voters, Voter{Name: "h0", Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)})
	s, err := New(Config{Name: "h0", Bind: voters[2].Addr, Voters: voters, Secret: []byte("not the secret, 32 bytes long..."), Dir: t.TempDir(), Fast: true}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := nodes[0].probe(nodes[1].cfg.Bind.String()); err != nil {
		t.Fatalf("a member's probe failed: %v", err)
	}
	if err := s.probe(nodes[0].cfg.Bind.String()); err == nil {
		t.Fatal("the stranger's probe was answered")
	}
	if up, _ := nodes[0].Reachable(); up != 2 {
		t.Errorf("member sees %d reachable, want 2", up)
	}
	if got := nodes[0].Refused()[RefusedUnauthenticated]; got == 0 {
		t.Errorf("the stranger's failed handshake is not counted: %v", nodes[0].Refused())
	}
	// The stranger forwards a block request straight to both members, as
	// a follower does to the leader; before the transport was
	// authenticated the leader would have committed it.
	take := []byte(`{"op":"take","network":"blue","subnet":"10.77.0.0/24","bits":28,"host":"h0"}`)
	var leader *Node
	for _, nd := range nodes {
		if nd.raft.State() == raft.Leader {
			leader = nd
		}
		if _, err := s.forward(nd.cfg.Bind.String(), take, 2*time.Second); err == nil {
			t.Fatalf("forward from the stranger to %s got an answer", nd.cfg.Name)
		}
	}
	// The same forward by a member is answered (so the path works).
	if leader == nil {
		t.Fatal("no leader")
	}
	member := nodes[0]
	if member == leader {
		member = nodes[1]
	}
	own := []byte(fmt.Sprintf(`{"op":"take","network":"green","subnet":"10.78.0.0/24","bits":28,"host":%q}`, member.cfg.Name))
	if r, err := member.forward(leader.cfg.Bind.String(), own, 5*time.Second); err != nil || r.Err != "" || !r.Block.IsValid() {
		t.Fatalf("a member's forward to the leader: %+v, %v", r, err)
	}
	// Raw bytes without the handshake (a raft AppendEntries as the plain
	// transport would carry it) are dropped with the connection.
	c, err := net.Dial("tcp", leader.cfg.Bind.String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0, 0x85, 0xa4, 'T', 'e', 'r', 'm', 0xcd, 0xff, 0xff})
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, io.EOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the raw connection is still open after 5 s")
		}
	}
	c.Close()
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if _, err := s.Take(sctx, "blue", testSubnet, 28); err == nil {
		t.Fatal("the stranger took a block")
	}
	for _, nd := range nodes {
		for ip := testSubnet.Addr(); testSubnet.Contains(ip); ip = ip.Next() {
			if o, ok := nd.Owner("blue", ip); ok && o.Host == "h0" {
				t.Fatalf("%s gives %s to the stranger", nd.cfg.Name, o.Prefix)
			}
		}
	}
}

// TestGateRefusesOtherAddresses: a connection from an address that is no
// voter's is closed before the TLS handshake and counted, even from a
// process that holds the secret; the same dial from a voter's address is
// answered.
func TestGateRefusesOtherAddresses(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	_, client, err := tlsConfigs([]byte("a cluster secret of 32 bytes!!!"))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(from string) error {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", nodes[0].cfg.Bind.String())
		if err != nil {
			return err
		}
		defer c.Close()
		tc := tls.Client(c, client)
		_ = tc.SetDeadline(time.Now().Add(2 * time.Second))
		return tc.Handshake()
	}
	if err := dial("127.0.0.1"); err != nil {
		t.Fatalf("handshake from a voter's address: %v", err)
	}
	for i := range 100 { // more than the handshake slots
		if err := dial("127.0.0.9"); err == nil {
			t.Fatalf("handshake #%d from 127.0.0.9 (no voter's) succeeded", i)
		}
	}
	if got := nodes[0].Refused()[RefusedStranger]; got != 100 {
		t.Errorf("refused[%s] = %d, want 100", RefusedStranger, got)
	}
	if got := nodes[0].Refused()[RefusedUnauthenticated]; got != 0 {
		t.Errorf("refused[%s] = %d, want 0: strangers never reach the handshake", RefusedUnauthenticated, got)
	}
	if err := dial("127.0.0.1"); err != nil {
		t.Fatalf("handshake from a voter's address after the strangers: %v", err)
	}
}

// TestRestartKeepsBlocks: the log survives a restart of every node.
func TestRestartKeepsBlocks(t *testing.T) {
	ports := freePorts(t, 1)
	dir := t.TempDir()
	v := []Voter{{Name: "h1", Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ports[0])}}
	cfg := Config{Name: "h1", Bind: v[0].Addr, Voters: v, Secret: []byte("a cluster secret of 32 bytes!!!"), Dir: dir, Fast: true}
	nd, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := nd.Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	nd.Close()
	nd, err = New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	b2, err := nd.Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	if b2 == b {
		t.Fatalf("after a restart the same block %s was given again", b)
	}
	if held := nd.Held("blue", testSubnet); len(held) != 2 {
		t.Fatalf("held after restart: %v, want 2 blocks", held)
	}
}

// TestRestartAloneKnowsBlocks: a host restarted while its only peer is
// down still knows its own and its peer's blocks, with no leader to tell
// it the commit index.
func TestRestartAloneKnowsBlocks(t *testing.T) {
	ports := freePorts(t, 2)
	var voters []Voter
	for i, p := range ports {
		voters = append(voters, Voter{Name: fmt.Sprintf("h%d", i+1), Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), p)})
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	cfg := func(i int) Config {
		return Config{Name: voters[i].Name, Bind: voters[i].Addr, Voters: voters, Secret: []byte("a cluster secret of 32 bytes!!!"), Dir: dirs[i], Fast: true}
	}
	var nodes []*Node
	for i := range 2 {
		nd, err := New(cfg(i), quiet())
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b1, err := nodes[0].Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := nodes[1].Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until h1 has applied h2's block too, then stop both.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if o, ok := nodes[0].Owner("blue", b2.Addr()); ok && o.Host == "h2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("h1 never applied h2's block")
		}
		time.Sleep(20 * time.Millisecond)
	}
	nodes[0].Close()
	nodes[1].Close()
	nd, err := New(cfg(0), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	if held := nd.Held("blue", testSubnet); len(held) != 1 || held[0] != b1 {
		t.Errorf("restarted alone, h1 holds %v, want [%s]", held, b1)
	}
	if o, ok := nd.Owner("blue", b2.Addr()); !ok || o.Host != "h2" {
		t.Errorf("restarted alone, h1 sees %s as %+v (%v), want h2's", b2, o, ok)
	}
}

// TestGrantedBeforeApplied: a follower that took a block through the
// leader holds it at once, before its own replica applies it, and after a
// restart alone.
func TestGrantedBeforeApplied(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Find the follower.
	deadline := time.Now().Add(10 * time.Second)
	var follower *Node
	for follower == nil {
		for i, nd := range nodes {
			if nd.raft.State() == raft.Leader {
				follower = nodes[1-i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := follower.Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	if held := follower.Held("blue", testSubnet); !slices.Contains(held, b) {
		t.Fatalf("right after Take, the follower holds %v, not %s", held, b)
	}
	if o, ok := follower.Owner("blue", b.Addr()); !ok || o.Host != follower.cfg.Name {
		t.Fatalf("owner of %s: %+v %v", b, o, ok)
	}
	cfg := follower.cfg
	for _, nd := range nodes {
		nd.Close()
	}
	nd, err := New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer nd.Close()
	if held := nd.Held("blue", testSubnet); !slices.Contains(held, b) {
		t.Fatalf("restarted alone, the follower holds %v, not %s", held, b)
	}
}

// BenchmarkTake measures one block request from a follower of a
// three-voter log on loopback: forward, commit with fsync on a majority,
// answer.
func BenchmarkTake(b *testing.B) {
	nodes := cluster(b, 3, "a cluster secret of 32 bytes!!!")
	var follower *Node
	deadline := time.Now().Add(10 * time.Second)
	for follower == nil && time.Now().Before(deadline) {
		for _, nd := range nodes {
			if nd.raft.State() == raft.Follower && nd.HasLeader() {
				follower = nd
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if follower == nil {
		b.Fatal("no follower with a leader")
	}
	ctx := context.Background()
	subnet := netip.MustParsePrefix("10.0.0.0/8")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := follower.Take(ctx, fmt.Sprintf("n%d", i/1000), subnet, 28); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVoterAddressChange: two hosts restart, each at a new address (a
// changed host.gossip_address). The log's configuration, written at
// bootstrap, still names the old ones; the configured addresses win, so
// the pair has a quorum again. Before, each kept dialling the other's old
// address and no block could be taken.
func TestVoterAddressChange(t *testing.T) {
	ports := freePorts(t, 2)
	lo := netip.MustParseAddr("127.0.0.1")
	var moved []netip.AddrPort
	for _, a := range []string{"127.0.0.2:0", "127.0.0.3:0"} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		moved = append(moved, netip.MustParseAddrPort(ln.Addr().String()))
		ln.Close()
	}
	dirs := []string{t.TempDir(), t.TempDir()}
	start := func(voters []Voter) []*Node {
		var nodes []*Node
		for i, v := range voters {
			nd, err := New(Config{Name: v.Name, Bind: v.Addr, Voters: voters, Secret: []byte("a cluster secret of 32 bytes!!!"), Dir: dirs[i], Fast: true}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, nd)
		}
		return nodes
	}
	take := func(nodes []*Node) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := nodes[0].Take(ctx, "blue", testSubnet, 28)
		return err
	}
	nodes := start([]Voter{{Name: "h1", Addr: netip.AddrPortFrom(lo, ports[0])}, {Name: "h2", Addr: netip.AddrPortFrom(lo, ports[1])}})
	if err := take(nodes); err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		nd.Close()
	}
	nodes = start([]Voter{{Name: "h1", Addr: moved[0]}, {Name: "h2", Addr: moved[1]}})
	defer func() {
		for _, nd := range nodes {
			nd.Close()
		}
	}()
	if err := take(nodes); err != nil {
		t.Fatalf("after moving to %v: %v", moved, err)
	}
}
