package main

import (
	"bytes"
	"regexp"
	"testing"

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
