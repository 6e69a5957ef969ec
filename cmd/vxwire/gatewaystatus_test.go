package main

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// TestPrintStatusGateway checks that the text status shows each network's
// gateway counters, egress refusals included.
func TestPrintStatusGateway(t *testing.T) {
	st := &api.Status{Host: "h1", Address: "198.18.0.1:4789", Networks: []api.NetworkStatus{
		{Name: "blue", VNI: 256, GatewayStats: &api.GatewayStatus{
			Counters:      api.Counters{RxFrames: 10, TxFrames: 9, Drops: map[string]uint64{api.DropEgressDenied: 3, api.DropSourceFlowLimit: 1}},
			EgressTCPOpen: 2, EgressTCPTotal: 5, EgressUDPOpen: 1, EgressUDPTotal: 4, EgressICMPOpen: 1, EgressICMPTotal: 6, DialErrors: 1,
		}},
		{Name: "red", VNI: 257},
	}}
	var b bytes.Buffer
	printStatus(&b, st)
	want := regexp.MustCompile(`(?m)^blue +10 +9 +2/5 +1/4 +1/6 +1 +egress_denied=3,source_flow_limit=1$`)
	if !want.Match(b.Bytes()) {
		t.Fatalf("no gateway line for blue:\n%s", b.String())
	}
}

// TestPrintPathMTU checks that `vxwire peers` and `vxwire status` show
// each peer's path MTU, and "-" while it is unknown.
func TestPrintPathMTU(t *testing.T) {
	ps := []api.PeerStatus{{Name: "h2", Address: "198.18.2.1:4789", PathMTU: 1300}, {Name: "h3", Address: "198.18.0.3:4789"}}
	var b bytes.Buffer
	printPeers(&b, ps, time.Now())
	printStatus(&b, &api.Status{Peers: ps})
	for _, re := range []string{`(?m)^h2 +198\.18\.2\.1:4789 +1300 +0 `, `(?m)^h3 +198\.18\.0\.3:4789 +- +0 `} {
		if n := len(regexp.MustCompile(re).FindAllIndex(b.Bytes(), -1)); n != 2 {
			t.Fatalf("%s matched %d lines, want 2 (peers and status):\n%s", re, n, b.String())
		}
	}
}
