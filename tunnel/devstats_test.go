package tunnel

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/vxwire/vxwire/crypto"
	"github.com/vxwire/vxwire/encap"
	"github.com/vxwire/vxwire/encap/encaptest"
	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/metrics"
	"github.com/vxwire/vxwire/tunnel/tunneltest"
)

// offloadConn is a fake underlay socket that reports a UDP offload state,
// as encap.StdConn does.
type offloadConn struct {
	*encaptest.ChannelConn
	gro, gso bool
}

func (c offloadConn) Offload() (bool, bool) { return c.gro, c.gso }

// TestDeviceCountersReachStatusAndMetrics checks that the counters the TAP
// devices, the encrypted connection and the underlay sockets keep appear
// in the status (as `vxwire status --json` prints it) and in /metrics.
func TestDeviceCountersReachStatusAndMetrics(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	dir := t.TempDir()
	un, cn := encaptest.NewNetwork(), tunneltest.NewCryptoNetwork()
	keys := testKeys(t, 2)
	sockets := 0
	h1 := startFakeHost(t, un, cn, encConfig(t, dir, 1, keys, "sec s1 10.79.0.10"), func(o *Options) {
		o.Listen = func(a netip.AddrPort, _ int) (encap.Conn, error) {
			sockets++
			// The receiving socket has GRO; of the sending ones, the
			// second has lost GSO.
			return offloadConn{un.Conn(a), true, sockets != 3}, nil
		}
	})
	h2 := startFakeHost(t, un, cn, encConfig(t, dir, 2, keys, "sec s2 10.79.0.20"))
	s1, s2 := h1.port(t, filepath.Join(dir, "h1-s1")), h2.port(t, filepath.Join(dir, "h2-s2"))
	for range 3 {
		f := frame(Broadcast, macOf("10.79.0.10"), "hello")
		s1.Inject(f)
		expectFrame(t, s2, f)
	}
	// A host whose key h1 lacks sends through the encrypted connection:
	// WireGuard's drop.
	rogue, err := cn.Open(crypto.Config{PrivateKey: testKeys(t, 1)[0],
		Peers: []crypto.Peer{{PublicKey: keys[0].Public(), ID: netip.MustParseAddrPort("198.18.0.1:4789")}}})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	rogue.Write([][]byte{vxlan(258, frame(Broadcast, MAC{2, 6, 6, 6, 6, 6}, "x"))}, netip.MustParseAddrPort("198.18.0.1:4789"))
	waitFor(t, func() bool { return h1.e.Status().WireGuard.Drops["unknown_source"] == 1 })

	// The status as the CLI's --json prints it.
	b, err := json.Marshal(h1.e.Status())
	if err != nil {
		t.Fatal(err)
	}
	var st api.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Offload != (api.Offload{UDPGRO: true, GSOSockets: DefaultTxSockets - 1, TxSockets: DefaultTxSockets}) {
		t.Errorf("offload %+v", st.Offload)
	}
	if wg := st.WireGuard; wg == nil || wg.TxPackets != 3 || wg.TxBytes == 0 || wg.Drops["unknown_source"] != 1 {
		t.Errorf("wireguard %+v", wg)
	}
	if len(st.Endpoints) != 1 || st.Endpoints[0].TAP == nil || st.Endpoints[0].TAP.RxFrames != 3 || st.Endpoints[0].TAP.RxReads == 0 {
		t.Errorf("endpoints %+v", st.Endpoints)
	}
	for _, key := range []string{`"tap":{"rx_reads"`, `"offload":{"udp_gro":true`, `"wireguard":{"tx_packets":3`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("status JSON lacks %s: %s", key, b)
		}
	}
	if got := h2.e.Status().Endpoints[0].TAP.TxFrames; got != 3 {
		t.Errorf("h2's TAP wrote %d frames, want 3", got)
	}

	// The same counters in /metrics.
	rec := httptest.NewRecorder()
	metrics.Handler(h1.e).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range []string{
		`vxwire_tap_frames_total{direction="rx",endpoint="s1",network="sec"} 3`,
		`vxwire_wireguard_packets_total{direction="tx"} 3`,
		`vxwire_wireguard_drops_total{reason="unknown_source"} 1`,
		`vxwire_udp_gro_enabled 1`,
		`vxwire_udp_gso_sockets 3`,
	} {
		if !strings.Contains(rec.Body.String(), line+"\n") {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
