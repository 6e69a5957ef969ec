package tests

// Docker's --opt encrypted on vxwire, checked on the wire with tshark.
//
//   PFX-h1: vxwire (key, docker_plugin) + dockerd   PFX-h2: the same
//   PFX-u1 198.18.0.1 ============= veth ============= PFX-u2 198.18.0.2
//     e1: eth0 plain, eth1 sec (encrypted)            e2: eth0 plain, eth1 sec

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// TestDockerEncrypted checks that a network made with `docker network
// create --opt encrypted` carries its containers' traffic only inside
// WireGuard on the underlay: a marker fetched over it never appears in
// the clear and no VXLAN of its VNI is seen, while a marker fetched over
// a plain network in the same capture does appear (the probe).
func TestDockerEncrypted(t *testing.T) {
	e := newEnv(t, "tshark")
	h1, h2 := e.twoHosts()
	k1, k2 := e.startDocker(h1), e.startDocker(h2)
	e1, e2 := e.withKey(h1), e.withKey(h2)
	secret := e.clusterSecret()
	for _, p := range []struct {
		h, peer *encHost
		k       *dockerHost
	}{{e1, e2, k1}, {e2, e1, k2}} {
		cfg := e.renderEnc(p.h, encConf{peers: []*encHost{p.peer}, secret: secret})
		cfg = strings.Replace(cfg, "[host]\n", fmt.Sprintf("[host]\ndocker_plugin = %q\n", filepath.Join(p.k.plugins, "vxwire.sock")), 1)
		e.startDaemon(p.h.host, e.file(p.h.id+".toml", cfg)).waitReady()
		p.k.stopBeforeDaemons()
		p.k.importBusybox()
		p.k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.85.0.0/24", "plain")
		p.k.mustDocker("network", "create", "-d", "vxwire", "--ipam-driver", "vxwire", "--subnet", "10.86.0.0/24", "--opt", "encrypted", "sec")
	}
	// The plugin creates the vxwire networks just after Docker's.
	var secVNI, plainVNI uint32
	e.eventually(20*time.Second, "h1 has networks plain and encrypted sec", func() error {
		nets := e.apiNetworks(h1)
		secVNI, plainVNI = 0, 0
		for _, n := range nets {
			switch {
			case n.Name == "sec" && n.Encrypted:
				secVNI = n.VNI
			case n.Name == "plain" && !n.Encrypted:
				plainVNI = n.VNI
			}
		}
		if secVNI == 0 || plainVNI == 0 || secVNI == plainVNI {
			return fmt.Errorf("h1's networks: %+v", nets)
		}
		return nil
	})
	k1.mustDocker("run", "-d", "--name", "e1", "--network", "plain", "bb:1", "sleep", "600")
	k2.mustDocker("run", "-d", "--name", "e2", "--network", "plain", "bb:1", "sleep", "600")
	k1.mustDocker("network", "connect", "sec", "e1")
	k2.mustDocker("network", "connect", "sec", "e2")
	plainAddr, secAddr := k2.containerAddr("e2", "eth0"), k2.containerAddr("e2", "eth1")
	if k1.containerAddr("e1", "eth1") == "" {
		t.Fatal("e1 has no address on sec")
	}
	encMarker, plainMarker := e.marker("sec"), e.marker("plain")
	k2.mustDocker("exec", "e2", "sh", "-c", fmt.Sprintf("mkdir -p /www && echo %s > /www/sec && echo %s > /www/plain && httpd -p 8080 -h /www", encMarker, plainMarker))
	for _, to := range []string{secAddr, plainAddr} {
		e.eventually(30*time.Second, "e1 reaches e2 at "+to, func() error {
			_, err := k1.docker("exec", "e1", "ping", "-c", "1", "-W", "1", to)
			return err
		})
	}

	capt := e.startCapture(h1.netns, h1.link, "udp")
	if got := k1.mustDocker("exec", "e1", "wget", "-q", "-O", "-", "http://"+secAddr+":8080/sec"); got != string(encMarker) {
		t.Fatalf("fetched %q over sec, want the marker", got)
	}
	if got := k1.mustDocker("exec", "e1", "wget", "-q", "-O", "-", "http://"+plainAddr+":8080/plain"); got != string(plainMarker) {
		t.Fatalf("fetched %q over plain, want the marker", got)
	}
	e.eventually(30*time.Second, "capture holds the marker sent over plain", func() error {
		if ok, err := capt.holds(plainMarker); err != nil || !ok {
			return fmt.Errorf("not yet (%v)", err)
		}
		return nil
	})
	capt.stop()
	if ok, err := capt.holds(encMarker); err != nil || ok {
		t.Errorf("the marker fetched over the encrypted network appears in the clear on the underlay (err %v)", err)
	}
	rows, err := capt.decodeAs("udp.dstport", "udp.srcport", "wg.type", "vxlan.vni")
	if err != nil {
		t.Fatal(err)
	}
	wgData, plainVX := 0, 0
	for i, r := range rows {
		switch {
		case r[3] == fmt.Sprint(secVNI):
			t.Errorf("frame %d: VXLAN of the encrypted network (VNI %d) in the clear: %q", i+1, secVNI, r)
		case r[3] == fmt.Sprint(plainVNI):
			plainVX++
		case r[2] == "4":
			wgData++
		}
	}
	if wgData == 0 || plainVX == 0 {
		t.Errorf("capture: %d WireGuard data messages, %d VXLAN frames of plain; want both", wgData, plainVX)
	}
}

// apiNetworks returns h's networks, failing the test on error.
func (e *env) apiNetworks(h *host) []api.Network {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nets, err := api.NewClient(e.socket(h)).Networks(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return nets
}
