package tests

//  PFX-c1 10.77.0.10 (blue)                      PFX-c2 10.77.0.20 (blue)
//        eth0 (TAP)                                    eth0 (TAP)
//            |                                             |
//   vxwire up (PFX-h1), metrics 127.0.0.1:9477     vxwire up (PFX-h2)
//   PFX-u1 198.18.0.1/24 ========== veth ========== PFX-u2 198.18.0.2/24
//
// TestDeviceCounters reads the counters of the TAP devices and the
// underlay sockets through `vxwire status --json` and /metrics;
// TestEncryptedCounters reads the encrypted connection's on the
// encrypted pair of encrypted_test.go.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestDeviceCounters(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	d1 := e.startDaemon(h1, e.writeConfig(h1, hostConf{
		peers: []*host{h2}, networks: []netConf{blue}, metrics: metricsAddr,
		endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}},
	}))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{
		peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}},
	}))
	d1.waitReady("c1")
	d2.waitReady("c2")
	e.mustPing(c1, "10.77.0.20")
	const pings = 10
	out, err := e.in(c1, "ping", "-c", strconv.Itoa(pings), "-i", "0.05", "-W", "1", "10.77.0.20")
	if err != nil || !strings.Contains(out, fmt.Sprintf(" %d received", pings)) {
		t.Fatalf("ping -c %d from c1 to c2: want every reply: %v\n%s", pings, err, out)
	}

	st := e.mustStatus(h1)
	if len(st.Endpoints) != 1 || st.Endpoints[0].TAP == nil {
		t.Fatalf("vxwire status --json has no TAP counters: %+v", st.Endpoints)
	}
	tap := st.Endpoints[0].TAP
	if tap.RxFrames < pings || tap.TxFrames < pings || tap.RxReads == 0 || tap.TxWrites == 0 {
		t.Errorf("after %d pings c1's TAP counters are %+v; want at least %d frames each way", pings, *tap, pings)
	}
	if st.Offload.TxSockets != 4 || st.Offload.GSOSockets > st.Offload.TxSockets {
		t.Errorf("offload %+v; want 4 sending sockets", st.Offload)
	}
	if st.WireGuard != nil {
		t.Errorf("a host without a key reports WireGuard counters %+v", *st.WireGuard)
	}

	mfs, err := scrape(h1.netns, metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := metricValue(mfs, "vxwire_tap_frames_total", "network", "blue", "endpoint", "c1", "direction", "rx"); err != nil {
		t.Error(err)
	} else if v < pings {
		t.Errorf("vxwire_tap_frames_total{endpoint=c1,direction=rx} = %v, want at least %d", v, pings)
	}
	if _, err := metricValue(mfs, "vxwire_tap_drops_total", "network", "blue", "endpoint", "c1", "direction", "tx"); err != nil {
		t.Error(err)
	}
	if v, err := metricValue(mfs, "vxwire_udp_tx_sockets"); err != nil || v != 4 {
		t.Errorf("vxwire_udp_tx_sockets = %v, %v; want 4", v, err)
	}
	gro := 0.0
	if st.Offload.UDPGRO {
		gro = 1
	}
	if v, err := metricValue(mfs, "vxwire_udp_gro_enabled"); err != nil || v != gro {
		t.Errorf("vxwire_udp_gro_enabled = %v, %v; status says %v", v, err, st.Offload.UDPGRO)
	}
}

func TestEncryptedCounters(t *testing.T) {
	e := newEnv(t)
	p := e.startEncPair("")
	p.d1.waitReady("ca", "pa")
	p.d2.waitReady("cb", "pb")
	e.mustPing(p.ca, "10.79.0.20")
	st := e.mustStatus(p.h1.host)
	wg := st.WireGuard
	if wg == nil || wg.TxPackets == 0 || wg.RxPackets == 0 || wg.TxBytes == 0 || wg.RxBytes == 0 {
		t.Fatalf("after a ping on the encrypted network, vxwire status --json shows WireGuard counters %+v", wg)
	}
}
