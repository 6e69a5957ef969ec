package tunnel

import (
	"encoding/json"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
	"github.com/vxwire/vxwire/tunnel/tap"
)

// FuzzTAPRecord decodes arbitrary bytes as a record of state_dir/taps:
// no panic, and an accepted record has what a reopen relies on and
// survives an encode and decode unchanged.
func FuzzTAPRecord(f *testing.F) {
	seed, _ := json.Marshal(tapRecord{Network: "blue", Name: "web", NetNS: "/var/run/netns/web", IfName: "eth0",
		MAC: "02:76:0a:4d:00:02", Address: "10.77.0.2/24", DefaultRoute: true,
		Identity: tap.Identity{NetNSDev: 4, NetNSIno: 4026532285, Index: 2}})
	f.Add(seed)
	f.Add([]byte(`{"network":"blue","name":"web","netns":"relative","ifname":"eth0","ifindex":2}`))
	f.Add([]byte(`{"network":"Blue!","name":"web","netns":"/x","ifname":"eth0","ifindex":0}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"network":"blue","name":"web","netns":"","ifname":"eth1","mac":"02:76:0a:4d:00:02","moved":true,"netns_dev":4,"netns_ino":9,"netns_cookie":77,"ifindex":31}`))
	f.Add([]byte(`{"network":"blue","name":"pc1","netns":"/proc/77/ns/net","ifname":"eth0","mac":"02:76:0a:4d:00:02","passed":true,"netns_dev":4,"netns_ino":9,"netns_cookie":77,"ifindex":4,"userns_dev":4,"userns_ino":11}`))
	f.Add([]byte(`{"network":"blue","name":"pc1","netns":"","ifname":"eth0","passed":true,"moved":true,"ifindex":4}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeTAPRecord(b)
		if err != nil {
			return
		}
		if config.CheckLabel(r.Network) != nil || config.CheckLabel(r.Name) != nil || r.Index <= 0 || (r.NetNS == "") != r.Moved || r.Moved && r.Passed {
			t.Fatalf("accepted %+v", r)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeTAPRecord(again)
		if err != nil || r2 != r {
			t.Fatalf("round trip: %+v, %v; want %+v", r2, err, r)
		}
	})
}
