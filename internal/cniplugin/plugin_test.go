package cniplugin

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vxwire/vxwire/internal/api"
	"github.com/vxwire/vxwire/internal/api/apitest"
)

var _ Client = (*api.Client)(nil)

// newPlugin serves the API with an in-memory backend that has network
// blue, and returns a plugin whose clients reach it whatever socket the
// conf names, the backend and the plugin's output.
func newPlugin(t *testing.T) (*Plugin, *apitest.Backend, *bytes.Buffer) {
	t.Helper()
	b := apitest.New()
	b.AddConfigNetwork(api.Network{Name: "blue", VNI: 256, Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", MTU: 1450})
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.NewHandler(b, slog.New(slog.DiscardHandler))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	var out bytes.Buffer
	return &Plugin{NewClient: func(string) Client { return api.NewClient(sock) }, Stdout: &out}, b, &out
}

func cmdArgs(id, conf string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: id, Netns: "/var/run/netns/" + id, IfName: "eth0", Args: "IgnoreUnknown=1;K8S_POD_NAME=" + id,
		StdinData: []byte(conf)}
}

func cniCode(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestAddDel(t *testing.T) {
	p, b, out := newPlugin(t)
	args := cmdArgs("web", blueConf)
	if err := p.Add(args); err != nil {
		t.Fatal(err)
	}
	r, err := current.NewResult(out.Bytes())
	if err != nil {
		t.Fatalf("result %s: %v", out, err)
	}
	res := r.(*current.Result)
	eps := b.Endpoints()
	if len(eps) != 1 {
		t.Fatalf("endpoints: %+v", eps)
	}
	ep := eps[0]
	want := api.Endpoint{Network: "blue", Name: "web", NetNS: "/var/run/netns/web", IfName: "eth0", ContainerID: "web"}
	if ep.Network != want.Network || ep.Name != want.Name || ep.NetNS != want.NetNS || ep.IfName != want.IfName || ep.ContainerID != want.ContainerID {
		t.Errorf("endpoint %+v, want %+v", ep, want)
	}
	switch {
	case res.CNIVersion != "1.1.0":
		t.Errorf("cniVersion %q", res.CNIVersion)
	case len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" || res.Interfaces[0].Mac != ep.MAC || res.Interfaces[0].Sandbox != args.Netns:
		t.Errorf("interfaces %v", res.Interfaces)
	case len(res.IPs) != 1 || res.IPs[0].Address.String() != ep.Address || !res.IPs[0].Gateway.Equal(net.IPv4(10, 77, 0, 1)) || *res.IPs[0].Interface != 0:
		t.Errorf("ips %v", res.IPs)
	case len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" || !res.Routes[0].GW.Equal(net.IPv4(10, 77, 0, 1)):
		t.Errorf("routes %v", res.Routes)
	case fmt.Sprint(res.DNS.Nameservers) != "[10.77.0.1]" || fmt.Sprint(res.DNS.Search) != "[blue]":
		t.Errorf("dns %+v", res.DNS)
	}
	// A second ADD of the same name is refused and leaves nothing behind.
	if err := p.Add(cmdArgs("web", blueConf)); err == nil {
		t.Error("second ADD with the same name succeeded")
	}
	for range 2 {
		if err := p.Del(args); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if eps := b.Endpoints(); len(eps) != 0 {
			t.Fatalf("endpoints after DEL: %+v", eps)
		}
	}
}

func TestAddVersionsAndErrors(t *testing.T) {
	p, _, out := newPlugin(t)
	conf := `{"cniVersion":"0.4.0","name":"vxnet","type":"vxwire","network":"blue","ip":"10.77.0.42"}`
	if err := p.Add(cmdArgs("old", conf)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"cniVersion": "0.4.0"`) || !strings.Contains(out.String(), "10.77.0.42/24") {
		t.Errorf("0.4.0 result: %s", out)
	}
	unknown := `{"cniVersion":"1.0.0","name":"vxnet","type":"vxwire","network":"red"}`
	if err := p.Add(cmdArgs("a", unknown)); cniCode(err) != types.ErrInvalidNetworkConfig {
		t.Errorf("ADD to an unknown network: %v", err)
	}
	outside := `{"cniVersion":"1.0.0","name":"vxnet","type":"vxwire","network":"blue","ip":"10.1.0.1"}`
	if err := p.Add(cmdArgs("b", outside)); cniCode(err) != types.ErrInvalidNetworkConfig {
		t.Errorf("ADD with an address outside the subnet: %v", err)
	}
}

func TestChained(t *testing.T) {
	p, _, out := newPlugin(t)
	conf := `{"cniVersion":"1.0.0","name":"vxnet","type":"vxwire","network":"blue","prevResult":{"cniVersion":"1.0.0",
		"interfaces":[{"name":"lo0"}],"ips":[{"address":"192.0.2.1/24","interface":0}]}}`
	if err := p.Add(cmdArgs("c", conf)); err != nil {
		t.Fatal(err)
	}
	r, err := current.NewResult(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	res := r.(*current.Result)
	if len(res.Interfaces) != 2 || len(res.IPs) != 2 || *res.IPs[1].Interface != 1 {
		t.Errorf("chained result: %s", out)
	}
}

func TestDelWithoutDaemon(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	p := &Plugin{NewClient: func(string) Client { return api.NewClient(missing) }}
	args := cmdArgs("gone", blueConf)
	if err := p.Del(args); err != nil {
		t.Errorf("DEL without daemon and namespace: %v", err)
	}
	args.Netns = "/proc/self/ns/net"
	if err := p.Del(args); cniCode(err) != types.ErrTryAgainLater {
		t.Errorf("DEL without daemon while the namespace exists: %v", err)
	}
	if err := p.Add(cmdArgs("x", blueConf)); cniCode(err) != types.ErrTryAgainLater {
		t.Errorf("ADD without daemon: %v", err)
	}
}

func TestStatus(t *testing.T) {
	p, b, _ := newPlugin(t)
	if err := p.Status(cmdArgs("", blueConf)); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	red := `{"cniVersion":"1.1.0","name":"vxnet","type":"vxwire","network":"red"}`
	if err := p.Status(cmdArgs("", red)); cniCode(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS of an unknown network: %v", err)
	}
	b.Fail(errors.New("down"))
	if err := p.Status(cmdArgs("", blueConf)); cniCode(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS of a failing daemon: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	p.NewClient = func(string) Client { return api.NewClient(missing) }
	if err := p.Status(cmdArgs("", blueConf)); cniCode(err) != ErrPluginNotAvailable {
		t.Errorf("STATUS without daemon: %v", err)
	}
}

func TestGC(t *testing.T) {
	p, b, _ := newPlugin(t)
	for _, id := range []string{"keep", "stale"} {
		if err := p.Add(cmdArgs(id, blueConf)); err != nil {
			t.Fatal(err)
		}
	}
	// Attached by the OCI hook, and without a container id: not the
	// plugin's to collect.
	for _, req := range []api.AttachRequest{
		{Network: "blue", Name: "hooked", NetNS: "/proc/42/ns/net", ContainerID: "hooked"},
		{Network: "blue", Name: "manual", NetNS: "/var/run/netns/manual"},
	} {
		if _, err := b.Attach(t.Context(), req); err != nil {
			t.Fatal(err)
		}
	}
	conf := `{"cniVersion":"1.1.0","name":"vxnet","type":"vxwire","network":"blue","cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}]}`
	if err := p.GC(&skel.CmdArgs{StdinData: []byte(conf)}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ep := range b.Endpoints() {
		names = append(names, ep.Name)
	}
	if fmt.Sprint(names) != "[keep hooked manual]" {
		t.Errorf("endpoints after GC: %v", names)
	}
}

func TestMatchPrevResult(t *testing.T) {
	ep := api.Endpoint{Network: "blue", Address: "10.77.0.5/24", MAC: "02:42:0a:4d:00:05"}
	args := &skel.CmdArgs{IfName: "eth0", Netns: "/var/run/netns/x"}
	good := &current.Result{
		Interfaces: []*current.Interface{{Name: "eth0", Mac: "02:42:0A:4D:00:05", Sandbox: "/var/run/netns/x"}},
		IPs:        []*current.IPConfig{{Interface: current.Int(0), Address: net.IPNet{IP: net.IPv4(10, 77, 0, 5).To4(), Mask: net.CIDRMask(24, 32)}}},
	}
	if ips, err := matchPrevResult(good, args, ep); err != nil || len(ips) != 1 {
		t.Errorf("matching prevResult: %v, %v", ips, err)
	}
	for name, mutate := range map[string]func(*current.Result){
		"other mac":     func(r *current.Result) { r.Interfaces[0].Mac = "02:00:00:00:00:01" },
		"other sandbox": func(r *current.Result) { r.Interfaces[0].Sandbox = "/var/run/netns/y" },
		"other address": func(r *current.Result) { r.IPs[0].Address.IP = net.IPv4(10, 77, 0, 6).To4() },
		"no ips":        func(r *current.Result) { r.IPs = nil },
	} {
		r := *good
		r.Interfaces = []*current.Interface{good.Interfaces[0].Copy()}
		r.IPs = []*current.IPConfig{good.IPs[0].Copy()}
		mutate(&r)
		if _, err := matchPrevResult(&r, args, ep); err == nil {
			t.Errorf("%s: matched", name)
		}
	}
}
