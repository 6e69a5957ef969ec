package tests

//  PFX-c1 10.77.0.10                                  PFX-c2 10.77.0.20
//    eth0 (TAP)  --- garbage DNS over TCP to 10.77.0.1:53
//        |                                                   |
//  vxwire up (PFX-h1)                                 vxwire up (PFX-h2, gossip test only)
//    ^ API socket: garbage JSON, huge bodies
//    ^ oci-hook and CNI mode: garbage state and config on stdin
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//                        <-- garbage UDP/TCP to 7946 (gossip), TCP to 7948 (raft)
//                            from the peer's own address
//
// Hostile input through each door of the daemon, once more end to end:
// each test sends what an attacker at that door can send and shows the
// daemon is still up and serves the same door for a normal request.
// Doors tested elsewhere: the underlay (TestBadUnderlayInput), DNS over
// UDP (TestDNSDetails), gossip from strangers and wrong secrets
// (adversary_gossip_test.go), container frames (adversary_port_test.go).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vxwire/vxwire/internal/api"
)

// oneHost starts h1 alone with blue and container c1 (10.77.0.10).
func (e *env) oneHost() (*host, *netns, *daemon) {
	e.t.Helper()
	h1, _ := e.twoHosts()
	c1 := e.container("c1")
	d := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		networks:  []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}},
	}))
	d.waitReady("c1")
	return h1, c1, d
}

// stillServing fails the test unless d runs and its API answers status.
func (e *env) stillServing(d *daemon, after string) {
	e.t.Helper()
	if !d.running() {
		e.t.Fatalf("daemon %s exited after %s:\n%s", d.h.id, after, tail(d.logText(), 60))
	}
	if _, err := e.status(d.h); err != nil {
		e.t.Fatalf("daemon %s does not answer status after %s: %v", d.h.id, after, err)
	}
	if strings.Contains(d.logText(), "goroutine crashed") || strings.Contains(d.logText(), "recovered a panic") {
		e.t.Fatalf("daemon %s panicked on %s:\n%s", d.h.id, after, tail(d.logText(), 60))
	}
}

// rawAPI sends body to the daemon's socket and returns the status code.
func rawAPI(sock, method, path string, body io.Reader) (int, error) {
	hc := &http.Client{Timeout: cmdTimeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	req, err := http.NewRequest(method, "http://vxwire"+path, body)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestAdversaryGarbageAPI sends the API garbage JSON, JSON of the wrong
// shape, deeply nested JSON and bodies over the size limit. Each is
// answered 4xx, and after each the daemon answers status and the same
// route takes a valid request (the probe).
func TestAdversaryGarbageAPI(t *testing.T) {
	e := newNetEnv(t)
	h1, _, d := e.oneHost()
	sock := e.socket(h1)
	huge := bytes.Repeat([]byte("a"), 2*api.MaxRequestBody)
	for _, tc := range []struct {
		name, method, path string
		body               []byte
	}{
		{"garbage", http.MethodPost, "/v1/networks", []byte("{{{\x00\xff not json")},
		{"wrong shape", http.MethodPost, "/v1/endpoints", []byte(`{"network": 7, "name": ["x"], "netns": {}}`)},
		{"deep nesting", http.MethodPost, "/v1/networks", []byte(`{"name":` + strings.Repeat("[", 100000))},
		{"huge string", http.MethodPost, "/v1/networks", append(append([]byte(`{"name":"`), huge...), '"', '}')},
		{"huge body", http.MethodDelete, "/v1/endpoints", huge},
		{"trailing data", http.MethodPost, "/v1/networks", []byte(`{"name":"x","subnet":"10.99.0.0/24"}{"name":"y"}`)},
	} {
		code, err := rawAPI(sock, tc.method, tc.path, bytes.NewReader(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code/100 != 4 {
			t.Errorf("%s: answered %d, want 4xx", tc.name, code)
		}
		e.stillServing(d, tc.name)
	}
	// The probe: the same route takes a valid request.
	ctx, cancel := context.WithTimeout(context.Background(), api.ClientTimeout)
	defer cancel()
	if _, err := api.NewClient(sock).CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatalf("valid network create after the garbage: %v", err)
	}
}

// TestAdversaryGarbageHook runs `vxwire oci-hook` with garbage OCI state
// on stdin, as a compromised runtime could: each run fails with a
// message, and the daemon it talks to keeps serving.
func TestAdversaryGarbageHook(t *testing.T) {
	e := newNetEnv(t)
	h1, _, d := e.oneHost()
	sock := e.socket(h1)
	r := rand.New(rand.NewPCG(8, 8))
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	for _, tc := range []struct{ name, stdin string }{
		{"random bytes", string(noise)},
		{"empty", ""},
		{"not an object", `[1,2,3]`},
		{"deep nesting", strings.Repeat("[", 100000)},
		{"pid of no process", `{"ociVersion":"1.0.2","id":"x","status":"creating","pid":2147483647,"bundle":"/nonexistent","annotations":{"vxwire.network":"blue"}}`},
		{"negative pid", `{"ociVersion":"1.0.2","id":"x","status":"creating","pid":-1,"bundle":"/","annotations":{"vxwire.network":"blue"}}`},
		{"huge network name", `{"ociVersion":"1.0.2","id":"x","status":"creating","pid":1,"bundle":"/","annotations":{"vxwire.network":"` + strings.Repeat("n", 1<<16) + `"}}`},
	} {
		out, err := runStdin(tc.stdin, "ip", "netns", "exec", h1.name, vxwireBin, "oci-hook", "--socket", sock, "createRuntime")
		if err == nil {
			t.Errorf("%s: hook succeeded: %s", tc.name, out)
		}
		e.stillServing(d, "hook input: "+tc.name)
	}
}

// TestAdversaryGarbageCNI runs vxwire in CNI mode with garbage network
// configs on stdin: each call fails with a CNI error, and the daemon
// keeps serving.
func TestAdversaryGarbageCNI(t *testing.T) {
	e := newNetEnv(t)
	h1, c1, d := e.oneHost()
	sock := e.socket(h1)
	for _, tc := range []struct{ name, stdin string }{
		{"garbage", "\x00\x01 not json {"},
		{"empty", ""},
		{"wrong types", `{"cniVersion":1,"name":["x"],"type":{},"network":7}`},
		{"deep nesting", `{"cniVersion":"1.0.0","name":` + strings.Repeat("{", 100000)},
		{"unknown network", `{"cniVersion":"1.0.0","name":"n","type":"vxwire","network":"nosuch","socket":"` + sock + `"}`},
		{"bad address", `{"cniVersion":"1.0.0","name":"n","type":"vxwire","network":"blue","socket":"` + sock + `","ip":"999.1.2.3"}`},
		{"huge network name", `{"cniVersion":"1.0.0","name":"n","type":"vxwire","network":"` + strings.Repeat("n", 1<<16) + `","socket":"` + sock + `"}`},
	} {
		cmd := exec.Command("ip", "netns", "exec", h1.name, vxwireBin)
		cmd.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=adversary", "CNI_NETNS=" + c1.path(),
			"CNI_IFNAME=eth1", "CNI_PATH=/nonexistent", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.Stdin = strings.NewReader(tc.stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s: CNI ADD succeeded: %s", tc.name, out.String())
			} else if !strings.Contains(out.String(), `"code"`) {
				t.Errorf("%s: no CNI error on stdout: %s", tc.name, out.String())
			}
		case <-time.After(cmdTimeout):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: CNI call did not return", tc.name)
		}
		e.stillServing(d, "CNI config: "+tc.name)
	}
	// The probe: the daemon still lists c1, so the same state is intact.
	if st := e.mustStatus(h1); len(missingEndpoints(st, []string{"c1"})) != 0 {
		t.Fatalf("c1 missing after the garbage: %+v", st.Endpoints)
	}
}

// TestAdversaryGarbageDNSTCP connects from container c1 to its gateway's
// DNS over TCP and sends garbage: a random stream, a length prefix with
// no message, the longest length prefix with a short body, and many
// queries of random bytes. After each the gateway answers a real query
// over TCP (the probe).
func TestAdversaryGarbageDNSTCP(t *testing.T) {
	e := newNetEnv(t, "dig")
	_, c1, d := e.oneHost()
	r := rand.New(rand.NewPCG(5, 3))
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	var framed []byte
	for range 50 {
		q := noise(12 + r.IntN(100))
		framed = append(framed, byte(len(q)>>8), byte(len(q)))
		framed = append(framed, q...)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"random stream", noise(8192)},
		{"length only", []byte{0x00, 0x20}},
		{"longest prefix, short body", append([]byte{0xff, 0xff}, noise(100)...)},
		{"framed random queries", framed},
	} {
		if err := sendTCPFrom(c1, blue.gateway+":53", tc.data); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		e.stillServing(d, "DNS TCP: "+tc.name)
		if err := e.hasStatus(c1, blue.gateway, "c1", "NOERROR", "+tcp"); err != nil {
			t.Fatalf("DNS over TCP after %s: %v", tc.name, err)
		}
	}
}

// sendTCPFrom connects from namespace n to addr, writes data, and closes
// after the server answers or closes, or after a second.
func sendTCPFrom(n *netns, addr string, data []byte) error {
	var c net.Conn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	if err != nil {
		return fmt.Errorf("connect to %s from %s: %w", addr, n.name, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(data); err != nil && !isReset(err) {
		return err
	}
	_, _ = io.Copy(io.Discard, c)
	return nil
}

// sendUDPFrom sends each datagram from namespace n to addr.
func sendUDPFrom(n *netns, addr string, datagrams [][]byte) error {
	var c net.Conn
	err := ns.WithNetNSPath(n.path(), func(ns.NetNS) error {
		var err error
		c, err = net.Dial("udp", addr)
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, d := range datagrams {
		if _, err := c.Write(d); err != nil && !errors.Is(err, net.ErrClosed) {
			// ICMP errors of earlier datagrams surface here; go on.
			continue
		}
	}
	return nil
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "broken pipe"))
}

// TestAdversaryGarbageGossip sends garbage to h1's gossip port (UDP and
// TCP) and raft port from h2's own address, which the gossip gate lets
// in: a peer's machine compromised, or an attacker spoofing it. Each is
// dropped; afterwards a network created on h1 still reaches h2 (the
// probe), so gossip and the log work.
func TestAdversaryGarbageGossip(t *testing.T) {
	e := newNetEnv(t, "dig")
	p := e.bluePair()
	r := rand.New(rand.NewPCG(2, 9))
	var datagrams [][]byte
	for i := range 200 {
		b := make([]byte, 1+r.IntN(1400))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		b[0] = byte(i) // every memberlist message type and then some
		datagrams = append(datagrams, b)
	}
	if err := sendUDPFrom(p.h2.netns, p.h1.addr+":7946", datagrams); err != nil {
		t.Fatal(err)
	}
	e.stillServing(p.d1, "gossip UDP garbage")
	for _, port := range []string{"7946", "7948"} {
		for i, b := range datagrams[:20] {
			if err := sendTCPFrom(p.h2.netns, p.h1.addr+":"+port, b); err != nil {
				t.Fatalf("tcp %s #%d: %v", port, i, err)
			}
		}
		e.stillServing(p.d1, "TCP garbage to port "+port)
	}
	// The probe: control traffic between the two hosts still works.
	ctx, cancel := context.WithTimeout(context.Background(), api.ClientTimeout)
	defer cancel()
	if _, err := api.NewClient(e.socket(p.h1)).CreateNetwork(ctx, api.NetworkSpec{Name: "green", Subnet: "10.99.0.0/24"}); err != nil {
		t.Fatalf("network create after the garbage: %v", err)
	}
	e.eventually(readyTimeout, "h2 learns network green", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		if _, err := api.NewClient(e.socket(p.h2)).Network(ctx, "green"); err != nil {
			return err
		}
		return nil
	})
	e.stillServing(p.d2, "the probe")
}
