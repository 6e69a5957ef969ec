package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/vxwire/vxwire/internal/api"
)

// FuzzRequestJSON decodes any body as each request type the server
// accepts, strictly as the server does. It must not panic, every error
// must wrap ErrInvalid, and what decodes must re-encode to a fix point.
func FuzzRequestJSON(f *testing.F) {
	yes := true
	for _, v := range []any{
		api.NetworkSpec{Name: "blue", Subnet: "10.77.0.0/24", Gateway: "10.77.0.1", VNI: 256, MTU: 1400, Encrypted: true, Egress: &yes},
		api.AttachRequest{Network: "blue", Name: "web", NetNS: "/proc/1/ns/net", IfName: "eth1", Address: "10.77.0.5",
			MAC: "02:42:0a:4d:00:05", Aliases: []string{"www", "w"}, ContainerID: "c0ffee"},
		api.DetachRequest{Network: "blue", Name: "web", ContainerID: "c0ffee", IfName: "eth0"},
	} {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte(`{"name":"x","colour":1}`))
	f.Add([]byte(`{"aliases":null,"egress":null} {}`))
	f.Add([]byte(`{"name":"\ud800"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fixPoint[api.NetworkSpec](t, b)
		fixPoint[api.AttachRequest](t, b)
		fixPoint[api.DetachRequest](t, b)
	})
}

func fixPoint[T any](t *testing.T, b []byte) {
	var v T
	if err := api.DecodeStrict(bytes.NewReader(b), &v); err != nil {
		if !errors.Is(err, api.ErrInvalid) {
			t.Fatalf("%T: error %v does not wrap ErrInvalid", v, err)
		}
		return
	}
	re, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var v2 T
	if err := api.DecodeStrict(bytes.NewReader(re), &v2); err != nil {
		t.Fatalf("%T: re-encoded %s does not decode: %v", v, re, err)
	}
	re2, _ := json.Marshal(v2)
	if !bytes.Equal(re, re2) {
		t.Fatalf("%T: not a fix point:\n%s\n%s", v, re, re2)
	}
}
