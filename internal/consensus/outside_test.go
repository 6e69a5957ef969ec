package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// outsideServer serves outside requests of node on a loopback listener,
// taking every connection for host "lap" (the stand-in for WireGuard's
// proof by tunnel address) unless stranger says it is not.
func outsideServer(t *testing.T, nd *Node, admit func(netip.Addr) (string, bool)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	nd.ServeOutside(ln, admit)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func lapOnly(netip.Addr) (string, bool) { return "lap", true }

func dialer(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", to.String())
}

// A host outside the log takes blocks distinct from the voters', through
// either voter (the follower forwards), keeps them across a restart, pins
// an address of its own and is refused one inside a voter's block.
func TestOutsideTakesAndPins(t *testing.T) {
	nodes := cluster(t, 2, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mine, err := nodes[0].Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	// The first server is down: the client moves on to the second.
	dead := outsideServer(t, nodes[0], lapOnly)
	servers := []netip.AddrPort{netip.AddrPortFrom(dead.Addr(), 1), outsideServer(t, nodes[1], lapOnly)}
	dir := t.TempDir()
	o, err := NewOutside(OutsideConfig{Host: "lap", Servers: servers, Dial: dialer, Dir: dir}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	b, err := o.Take(ctx, "blue", testSubnet, 28)
	if err != nil {
		t.Fatal(err)
	}
	if !o.HasLeader() {
		t.Fatal("cut off after a server answered")
	}
	if b.Overlaps(mine) {
		t.Fatalf("outside host got %s, which overlaps h1's %s", b, mine)
	}
	eventually(t, func() bool { ob, ok := nodes[0].Owner("blue", b.Addr()); return ok && ob.Host == "lap" })

	o2, err := NewOutside(OutsideConfig{Host: "lap", Servers: servers, Dial: dialer, Dir: dir}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if h := o2.Held("blue", testSubnet); len(h) != 1 || h[0] != b {
		t.Fatalf("after a restart the outside host holds %v, want [%s]", h, b)
	}

	free := netip.MustParseAddr("10.77.0.200")
	if err := o.Pin(ctx, "blue", free, "web"); err != nil {
		t.Fatal(err)
	}
	if p, ok := o.Pinned("blue", free); !ok || p.Host != "lap" {
		t.Fatalf("pinned = %+v %v", p, ok)
	}
	err = o.Pin(ctx, "blue", mine.Addr().Next(), "web2")
	if !IsRefused(err) || !strings.Contains(err.Error(), "h1") {
		t.Fatalf("pin inside h1's block: %v, want a refusal naming h1", err)
	}
	if err := o.Unpin(ctx, "blue", free, "web"); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Pinned("blue", free); ok {
		t.Fatal("still pinned after unpin")
	}
}

// A connection the gate does not admit gets nothing and is counted; a
// request naming a host, or garbage, is refused as malformed.
func TestOutsideRefusals(t *testing.T) {
	nodes := cluster(t, 1, "a cluster secret of 32 bytes!!!")
	stranger := outsideServer(t, nodes[0], func(netip.Addr) (string, bool) { return "", false })
	admitted := outsideServer(t, nodes[0], lapOnly)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	o, err := NewOutside(OutsideConfig{Host: "lap", Servers: []netip.AddrPort{stranger}, Dial: dialer, Dir: t.TempDir()}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if !o.HasLeader() {
		t.Fatal("cut off before any request")
	}
	var qe *QuorumError
	if _, err := o.Take(ctx, "blue", testSubnet, 28); !errors.As(err, &qe) {
		t.Fatalf("take through a gate that refuses: %v, want no quorum", err)
	}
	if o.HasLeader() {
		t.Fatal("not cut off after no server answered")
	}
	if nodes[0].Refused()[RefusedOutsideStranger] == 0 {
		t.Fatalf("refused = %v, want %s", nodes[0].Refused(), RefusedOutsideStranger)
	}
	for _, raw := range []string{`{"op":"take","network":"blue","subnet":"10.77.0.0/24","bits":28,"host":"h1"}`, `{"op":"drop"}`, "garbage"} {
		c, err := net.Dial("tcp", admitted.String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(raw + "\n"))
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		var rep OutsideReply
		_ = json.NewDecoder(c).Decode(&rep)
		c.Close()
		if rep.Block.IsValid() {
			t.Fatalf("%s: got block %s", raw, rep.Block)
		}
	}
	if got := nodes[0].Refused()[RefusedOutsideMalformed]; got != 3 {
		t.Fatalf("malformed = %d, want 3", got)
	}
	if h := nodes[0].Held("blue", testSubnet); len(h) != 0 {
		t.Fatalf("h1 holds %v after forged takes", h)
	}
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
	}
}

// FuzzOutsideRequest: whatever a peer sends, a request that parses is a
// take, pin or unpin of the sender's host that passes the log's check.
func FuzzOutsideRequest(f *testing.F) {
	f.Add([]byte(`{"op":"take","network":"blue","subnet":"10.77.0.0/24","bits":28,"id":7}`))
	f.Add([]byte(`{"op":"pin","network":"blue","ip":"10.77.0.9","endpoint":"web"}`))
	f.Add([]byte(`{"op":"unpin","network":"blue","ip":"10.77.0.9","endpoint":"web","host":"h1"}`))
	f.Add([]byte(`{"op":"net-create","network":"blue"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseOutsideRequest(b, "lap")
		if err != nil {
			return
		}
		if c.Host != "lap" || (c.Op != opTake && c.Op != opPin && c.Op != opUnpin) {
			t.Fatalf("parsed %+v", c)
		}
		if err := c.check(); err != nil {
			t.Fatalf("parsed a command the log refuses: %v", err)
		}
	})
}

// One host holding its share of request slots with idle connections is
// refused more (raft_outside_busy), while another host is still served.
func TestOutsideBusyPerHost(t *testing.T) {
	nodes := cluster(t, 1, "a cluster secret of 32 bytes!!!")
	// Connections from 127.0.0.1 are lap's, from 127.0.0.2 lap2's.
	hog := outsideServer(t, nodes[0], func(a netip.Addr) (string, bool) {
		if a == netip.MustParseAddr("127.0.0.2") {
			return "lap2", true
		}
		return "lap", true
	})
	for range maxOutsidePerHost {
		c, err := net.Dial("tcp", hog.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	eventually(t, func() bool {
		c, err := net.Dial("tcp", hog.String())
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		return err != nil && nodes[0].Refused()[RefusedOutsideBusy] > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	from2 := func(ctx context.Context, to netip.AddrPort) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		return d.DialContext(ctx, "tcp", to.String())
	}
	o, err := NewOutside(OutsideConfig{Host: "lap2", Servers: []netip.AddrPort{hog}, Dial: from2, Dir: t.TempDir()}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Take(ctx, "blue", testSubnet, 28); err != nil {
		t.Fatalf("another host beside the hog: %v", err)
	}
}

// TestOutsideBlocksPerHost: a host outside the log that keeps taking
// (its key alone, a stolen laptop say) gets maxOutsideBlocks blocks of a
// network and then refusals, while the network has room and a voter
// still takes. Before this bound it could take every block of the
// subnet and leave none for the hosts that run the containers.
func TestOutsideBlocksPerHost(t *testing.T) {
	nodes := cluster(t, 1, "a cluster secret of 32 bytes!!!")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o, err := NewOutside(OutsideConfig{Host: "lap", Servers: []netip.AddrPort{outsideServer(t, nodes[0], lapOnly)}, Dial: dialer, Dir: t.TempDir()}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxOutsideBlocks {
		if _, err := o.Take(ctx, "blue", testSubnet, 28); err != nil {
			t.Fatalf("take %d: %v", i+1, err)
		}
	}
	var re *RefusedError
	if _, err := o.Take(ctx, "blue", testSubnet, 28); !errors.As(err, &re) || re.Exhausted {
		t.Fatalf("take %d: %v, want a refusal that is not exhaustion", maxOutsideBlocks+1, err)
	}
	if got := nodes[0].Refused()[RefusedOutsideBlocks]; got != 1 {
		t.Fatalf("refused = %v, want one %s", nodes[0].Refused(), RefusedOutsideBlocks)
	}
	// Probe: the network still has blocks, and a voter gets one.
	if _, err := nodes[0].Take(ctx, "blue", testSubnet, 28); err != nil {
		t.Fatalf("voter's take after the laptop's refusal: %v", err)
	}
	// Another network is counted apart.
	if _, err := o.Take(ctx, "red", testSubnet, 28); err != nil {
		t.Fatalf("laptop's take of another network: %v", err)
	}
}
