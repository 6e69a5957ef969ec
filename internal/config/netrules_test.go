package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestNewNetwork: the API's and the CLI's definition of a network gets the
// file's defaults, and each refusal names the field, as a *FieldError.
func TestNewNetwork(t *testing.T) {
	n, err := NewNetwork("blue", 0, "10.87.0.0/24", "", 0, false, true)
	if err != nil {
		t.Fatal(err)
	}
	if n.Gateway != netip.MustParseAddr("10.87.0.1") || n.VNI != 0 || !n.Egress {
		t.Fatalf("defaults: %+v", n)
	}
	n, err = NewNetwork("red", 4000, "10.88.0.0/24", "10.88.0.254", 1400, true, false)
	if err != nil || n.Gateway != netip.MustParseAddr("10.88.0.254") || n.VNI != 4000 || n.MTU != 1400 || !n.Encrypted || n.Egress {
		t.Fatalf("explicit fields: %+v, %v", n, err)
	}
	for _, tc := range []struct {
		name, subnet, gateway string
		vni                   uint32
		mtu                   int
		field, msg            string
	}{
		{"Blue", "10.87.0.0/24", "", 0, 0, "name", "name:"},
		{"blue", "10.87.0.0/24", "", 100, 0, "vni", "vni 100 is out of range"},
		{"blue", "10.87.0.1/24", "", 0, 0, "subnet", "host bits"},
		{"blue", "10.87.0.0/31", "", 0, 0, "subnet", "too small"},
		{"blue", "fd00::/64", "", 0, 0, "subnet", "not a valid IPv4 prefix"},
		{"blue", "10.87.0.0/24", "x", 0, 0, "gateway", `"x" is not an IPv4 address`},
		{"blue", "10.87.0.0/24", "10.88.0.1", 0, 0, "gateway", "outside subnet"},
		{"blue", "10.87.0.0/24", "", 0, 100, "mtu", "mtu 100 is out of range"},
	} {
		_, err := NewNetwork(tc.name, tc.vni, tc.subnet, tc.gateway, tc.mtu, false, true)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want a refusal of %s saying %q", tc, err, tc.field, tc.msg)
		}
	}
}

// TestNetworkClash: networks are unique by name, VNI and subnet; a VNI
// not chosen yet clashes with none.
func TestNetworkClash(t *testing.T) {
	o := &Network{Name: "blue", VNI: 300, Subnet: netip.MustParsePrefix("10.87.0.0/24")}
	for _, tc := range []struct {
		n    Network
		want string
	}{
		{Network{Name: "blue", VNI: 301, Subnet: netip.MustParsePrefix("10.88.0.0/24")}, `network "blue" exists`},
		{Network{Name: "red", VNI: 300, Subnet: netip.MustParsePrefix("10.88.0.0/24")}, `vni 300 is used by network "blue"`},
		{Network{Name: "red", VNI: 301, Subnet: netip.MustParsePrefix("10.87.0.128/25")}, "overlaps 10.87.0.0/24"},
		{Network{Name: "red", VNI: 0, Subnet: netip.MustParsePrefix("10.88.0.0/24")}, ""},
		{Network{Name: "red", VNI: 301, Subnet: netip.MustParsePrefix("10.88.0.0/24")}, ""},
	} {
		err := NetworkClash(&tc.n, o)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v beside %+v: %v, want %q", tc.n, o, err, tc.want)
		}
	}
}

// TestNewEndpoint: the API's and the CLI's endpoint gets the file's
// default interface, and each refusal names the field.
func TestNewEndpoint(t *testing.T) {
	ep, err := NewEndpoint("blue", "web", []string{"www"}, "", "", "")
	if err != nil || ep.IfName != DefaultIfName || ep.Address.IsValid() || ep.MAC != nil {
		t.Fatalf("defaults: %+v, %v", ep, err)
	}
	ep, err = NewEndpoint("blue", "web", nil, "eth1", "10.87.0.5", "02:00:00:00:00:05")
	if err != nil || ep.IfName != "eth1" || ep.Address != netip.MustParseAddr("10.87.0.5") || ep.MAC.String() != "02:00:00:00:00:05" {
		t.Fatalf("explicit fields: %+v, %v", ep, err)
	}
	for _, tc := range []struct {
		name              string
		aliases           []string
		ifname, addr, mac string
		field, msg        string
	}{
		{"Web", nil, "", "", "", "name", "name:"},
		{"web", []string{"web"}, "", "", "", "aliases", "the endpoint's name"},
		{"web", []string{"a", "a"}, "", "", "", "aliases", "listed twice"},
		{"web", nil, "eth0/x", "", "", "ifname", "ifname:"},
		{"web", nil, "", "10.87.0.5/24", "", "address", "not an IPv4 address"},
		{"web", nil, "", "fd00::5", "", "address", "not an IPv4 address"},
		{"web", nil, "", "", "01:00:5e:00:00:01", "mac", "multicast"},
		{"web", nil, "", "", "00:00:00:00:00:00", "mac", "all-zero"},
	} {
		_, err := NewEndpoint("blue", tc.name, tc.aliases, tc.ifname, tc.addr, tc.mac)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want a refusal of %s saying %q", tc, err, tc.field, tc.msg)
		}
	}
}
