package crypto

// Interoperability with Debian's wireguard-go and the kernel's UDP stack.
//
//	 netns <p>a                                 netns <p>b
//	┌──────────────────────────┐               ┌──────────────────────────────────┐
//	│ Device (this package)    │               │ wireguard-go -f <p>w  (:51821)   │
//	│  wg :51820               │   veth pair   │  <p>w 10.251.0.2/24              │
//	│  tunnel 10.251.0.1       │  <p>a ── <p>b │ UDP socket 10.251.0.2:4789       │
//	│  198.18.R.1/24 on <p>a   │               │  198.18.R.2/24 on <p>b           │
//	└──────────────────────────┘               └──────────────────────────────────┘
//
// The Device's inner packets must be exactly what the kernel accepts on a
// wg interface, and the kernel's UDP packets exactly what unwrap accepts.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"go.uber.org/goleak"
)

func TestInteropWireguardGo(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"wireguard-go", "wg", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install wireguard-go wireguard-tools iproute2)", tool)
		}
	}
	t.Run("no psk", func(t *testing.T) { interop(t, false) })
	t.Run("psk", func(t *testing.T) { interop(t, true) })
}

func interop(t *testing.T, psk bool) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	p := uniqueName("vxi")[:9]
	nsA, nsB, wgIf := p+"a", p+"b", p+"w"
	var r [1]byte
	copy(r[:], p[3:4])
	underA := netip.AddrFrom4([4]byte{198, 18, r[0], 1})
	underB := netip.AddrFrom4([4]byte{198, 18, r[0], 2})
	tunA, tunB := netip.MustParseAddr("10.251.0.1"), netip.MustParseAddr("10.251.0.2")
	const portA, portB = 51820, 51821

	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range []string{nsA, nsB} {
		run("ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		run("ip", "-n", n, "link", "set", "lo", "up")
	}
	run("ip", "-n", nsA, "link", "add", nsA, "type", "veth", "peer", "name", nsB, "netns", nsB)
	run("ip", "-n", nsA, "addr", "add", underA.String()+"/24", "dev", nsA)
	run("ip", "-n", nsB, "addr", "add", underB.String()+"/24", "dev", nsB)
	run("ip", "-n", nsA, "link", "set", nsA, "up")
	run("ip", "-n", nsB, "link", "set", nsB, "up")

	// The peer: Debian's wireguard-go configured with wg(8).
	theirKey, _ := GenerateKey()
	ourKey, _ := GenerateKey()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(theirKey.String()+"\n"), 0o600)
	cmd := exec.Command("ip", "netns", "exec", nsB, "wireguard-go", "-f", wgIf)
	cmd.Env = append(os.Environ(), "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1")
	var wgOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &wgOut, &wgOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("wireguard-go output:\n%s", wgOut.String())
		}
	})
	eventually(t, 10*time.Second, "wireguard-go's uapi socket", func() bool {
		_, err := os.Stat(filepath.Join("/var/run/wireguard", wgIf+".sock"))
		return err == nil
	})
	wgSet := []string{"wg", "set", wgIf, "listen-port", fmt.Sprint(portB), "private-key", keyFile,
		"peer", ourKey.Public().String(), "endpoint", netip.AddrPortFrom(underA, portA).String(),
		"allowed-ips", tunA.String() + "/32"}
	cfg := Config{
		PrivateKey: ourKey,
		ListenPort: portA,
		TunnelAddr: tunA,
		MTU:        1420,
		Peers: []Peer{{
			PublicKey:  theirKey.Public(),
			Endpoint:   netip.AddrPortFrom(underB, portB),
			TunnelAddr: tunB,
			ID:         netip.AddrPortFrom(underB, 4789),
		}},
	}
	if psk {
		cfg.Secret, cfg.RotateEvery = []byte("interop secret"), 12*time.Hour
		ring := NewRing(cfg.Secret, cfg.RotateEvery)
		pskFile := filepath.Join(dir, "psk")
		os.WriteFile(pskFile, []byte(ring.PeerPSK(ring.Primary(time.Now()), ourKey.Public(), theirKey.Public()).String()+"\n"), 0o600)
		wgSet = append(wgSet, "preshared-key", pskFile)
	}
	run(wgSet...)
	run("ip", "-n", nsB, "addr", "add", tunB.String()+"/24", "dev", wgIf)
	run("ip", "-n", nsB, "link", "set", wgIf, "up")

	// Our Device and the peer's plain UDP socket, each created inside its
	// namespace (sockets keep the namespace they were made in).
	netnsA, err := ns.GetNS("/var/run/netns/" + nsA)
	if err != nil {
		t.Fatal(err)
	}
	defer netnsA.Close()
	netnsB, err := ns.GetNS("/var/run/netns/" + nsB)
	if err != nil {
		t.Fatal(err)
	}
	defer netnsB.Close()
	var d *Device
	if err := netnsA.Do(func(ns.NetNS) (err error) {
		d, err = New(cfg, testLogger(t))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	us := &node{}
	us.attach(t, d)
	var sock *net.UDPConn
	if err := netnsB.Do(func(ns.NetNS) (err error) {
		sock, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunB, 4789)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	id := cfg.Peers[0].ID

	// Device → kernel: every size up to the inner MTU arrives intact, from
	// our tunnel address and port 4789.
	buf := make([]byte, 65536)
	for _, size := range []int{16, 100, 1000, 1420 - InnerOverhead} {
		want := vxlanDatagram(size, uint32(size))
		var got []byte
		var from netip.AddrPort
		eventually(t, 15*time.Second, fmt.Sprintf("a %d-byte datagram at the kernel socket", size), func() bool {
			if err := d.Write([][]byte{want}, id); err != nil {
				t.Fatal(err)
			}
			sock.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			for {
				n, addr, err := sock.ReadFromUDPAddrPort(buf)
				if err != nil {
					return false
				}
				got, from = buf[:n], addr
				// Earlier sizes' probes, repeated while the handshake was
				// under way, may still arrive: skip them.
				if n < size && bytes.Equal(got, vxlanDatagram(n, uint32(n))) {
					continue
				}
				return true
			}
		})
		if !bytes.Equal(got, want) || from != netip.AddrPortFrom(tunA, 4789) {
			t.Fatalf("size %d: got %d bytes from %v", size, len(got), from)
		}
	}
	// Kernel → Device: what the kernel sends (hashed checksum, its own
	// IP id) passes unwrap and is attributed to the peer's ID.
	for _, size := range []int{16, 100, 1000, 1420 - InnerOverhead} {
		want := vxlanDatagram(size, uint32(size)+1)
		if _, err := sock.WriteToUDPAddrPort(want, netip.AddrPortFrom(tunA, 4789)); err != nil {
			t.Fatal(err)
		}
		got := us.collect(1, 5*time.Second)
		if len(got) != 1 || !bytes.Equal(got[0].data, want) || got[0].from != id {
			t.Fatalf("size %d: got %v (stats %+v)", size, got, d.Stats())
		}
	}
	// A datagram to another port of our tunnel address is dropped.
	sock.WriteToUDPAddrPort([]byte("not vxlan"), netip.AddrPortFrom(tunA, 9999))
	eventually(t, 5*time.Second, "the wrong_port drop", func() bool { return d.Stats().Drops[DropWrongPort] == 1 })

	out, _ := exec.Command("wg", "show", wgIf).CombinedOutput()
	t.Logf("peer side, wg show %s:\n%s", wgIf, out)
	if !strings.Contains(string(out), "latest handshake") {
		t.Fatal("peer reports no handshake")
	}
	if psk != strings.Contains(string(out), "preshared key") {
		t.Fatalf("peer's preshared key state wrong:\n%s", out)
	}
}
