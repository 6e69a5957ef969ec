package cniplugin

import (
	"fmt"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vxwire/vxwire/internal/api"
)

// TestAddSecondNetwork checks that a second network in the same namespace
// (CNI_IFNAME eth1) gets its address but no default route, and that its
// DNS settings name the first network's gateway and both networks.
func TestAddSecondNetwork(t *testing.T) {
	p, b, out := newPlugin(t)
	b.AddConfigNetwork(api.Network{Name: "red", VNI: 257, Subnet: "10.78.0.0/24", Gateway: "10.78.0.1", MTU: 1450})
	if err := p.Add(cmdArgs("web", blueConf)); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	args := cmdArgs("web", strings.Replace(blueConf, `"blue"`, `"red"`, 1))
	args.IfName = "eth1"
	if err := p.Add(args); err != nil {
		t.Fatal(err)
	}
	r, err := current.NewResult(out.Bytes())
	if err != nil {
		t.Fatalf("result %s: %v", out, err)
	}
	res := r.(*current.Result)
	switch {
	case len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth1":
		t.Errorf("interfaces %v", res.Interfaces)
	case len(res.IPs) != 1 || !strings.HasPrefix(res.IPs[0].Address.String(), "10.78.0."):
		t.Errorf("ips %v", res.IPs)
	case len(res.Routes) != 0:
		t.Errorf("routes %v: the second network must not take the default route", res.Routes)
	case fmt.Sprint(res.DNS.Nameservers) != "[10.77.0.1]" || fmt.Sprint(res.DNS.Search) != "[blue red]":
		t.Errorf("dns %+v", res.DNS)
	}
}
