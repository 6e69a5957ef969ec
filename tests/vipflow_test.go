package tests

// Flows through a VIP when a replica leaves, on the topology of
// vip_test.go: web1 (h1) and web2 (h2) also run a line echo on TCP 7003
// that first says its name.

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

// vipConn is one connection from c1 through the VIP, and the replica that
// answered it.
type vipConn struct {
	c       net.Conn
	r       *bufio.Reader
	replica string
}

// dialVIP connects from c1 to the VIP on port 7003 and reads the name the
// replica says first.
func (e *env) dialVIP(v vipTopo) (vipConn, error) {
	var c net.Conn
	err := ns.WithNetNSPath(v.c1.path(), func(ns.NetNS) error {
		var err error
		c, err = net.DialTimeout("tcp4", net.JoinHostPort(v.vip, "7003"), 3*time.Second)
		return err
	})
	if err != nil {
		return vipConn{}, err
	}
	e.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		return vipConn{}, fmt.Errorf("first line through %s:7003: %w", v.vip, err)
	}
	return vipConn{c: c, r: r, replica: strings.TrimSpace(name)}, nil
}

// TestVIPLeaveKeepsFlows checks that a replica leaving a VIP service
// leaves the established flows to the other replica untouched: c1 holds
// connections through the VIP to both web1 and web2 (the probe that the
// VIP spread them, so the test can fail), web2 detaches, and every
// connection to web1 still echoes on the same connection.
func TestVIPLeaveKeepsFlows(t *testing.T) {
	e := newEnv(t, "socat", "curl", "dig")
	v := e.vipCluster()
	e.startProc(v.web1, "echo", "socat", "TCP-LISTEN:7003,fork,reuseaddr", "SYSTEM:echo web1; cat")
	e.startProc(v.web2, "echo", "socat", "TCP-LISTEN:7003,fork,reuseaddr", "SYSTEM:echo web2; cat")
	var to1 []vipConn
	to2 := 0
	e.eventually(reachTimeout, "connections through the VIP reach web1 twice and web2", func() error {
		vc, err := e.dialVIP(v)
		if err != nil {
			return err
		}
		switch vc.replica {
		case "web1":
			to1 = append(to1, vc)
		case "web2":
			to2++
		default:
			return permanent(fmt.Errorf("a connection through the VIP was answered by %q", vc.replica))
		}
		if len(to1) < 2 || to2 == 0 {
			return fmt.Errorf("%d to web1, %d to web2", len(to1), to2)
		}
		return nil
	})

	e.mustVX("detach", "--socket", e.socket(v.h2), "--network", "blue", "--name", "web2")
	e.waitServiceEndpoints(v.h1, "web", 1)
	for i, vc := range to1 {
		msg := fmt.Sprintf("still-%d", i)
		if _, err := fmt.Fprintln(vc.c, msg); err != nil {
			t.Fatalf("connection %d to web1 after web2 left: write: %v", i, err)
		}
		if got, err := vc.r.ReadString('\n'); err != nil || strings.TrimSpace(got) != msg {
			t.Errorf("connection %d to web1 after web2 left: read %q, %v; want %q", i, got, err, msg)
		}
	}
}
