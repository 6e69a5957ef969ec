package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// A host behind NAT: its servers list it with a public key and a tunnel
// address but no underlay address.
func roamingDoc(network []string, peer ...string) string {
	host := append(slices.Clone(hostBlock), `private_key_file = "/k"`)
	p := append([]string{`[[peer]]`, `name = "laptop"`, `public_key = "` + testPubAlice + `"`}, peer...)
	return doc(host, p, network)
}

func TestParseRoamingPeer(t *testing.T) {
	enc := append(slices.Clone(blueBlock), `encrypted = true`)
	c := mustParse(t, "h1.toml", []byte(roamingDoc(enc, `tunnel_address = "100.82.9.2"`, `keepalive = "25s"`)))
	p := c.Peers[0]
	if !p.Roaming() || p.Address.IsValid() || p.GossipAddress.IsValid() {
		t.Fatalf("peer %+v: want roaming, no address", p)
	}
	if p.Keepalive != 25*time.Second {
		t.Errorf("keepalive = %v", p.Keepalive)
	}
	if got, want := p.AddrPort(), netip.AddrPortFrom(netip.MustParseAddr("100.82.9.2"), DefaultPort); got != want {
		t.Errorf("AddrPort = %v, want the tunnel address %v", got, want)
	}
}

func TestParseRoamingErrors(t *testing.T) {
	enc := append(slices.Clone(blueBlock), `encrypted = true`)
	for _, tc := range []errorCase{
		{"plain network", roamingDoc(blueBlock, `tunnel_address = "100.82.9.2"`), []string{
			`h1.toml:9: network[0]: peer laptop has no address: a network that is not encrypted needs addresses both ways (set encrypted = true, or the peer's address)`}},
		{"no tunnel address", roamingDoc(enc), []string{
			`h1.toml:7: peer[0].public_key: a peer without an address needs tunnel_address: there is no address to derive it from`}},
		{"gossip address", roamingDoc(enc, `tunnel_address = "100.82.9.2"`, `gossip_address = "198.18.9.2"`), []string{
			`h1.toml:9: peer[0].gossip_address: a peer without an address gossips inside its WireGuard tunnel; leave gossip_address out`}},
		{"keepalive fraction", roamingDoc(enc, `tunnel_address = "100.82.9.2"`, `keepalive = "1500ms"`), []string{
			`h1.toml:9: peer[0].keepalive: 1.5s: must be whole seconds from 1s to 18h12m15s, or 0 for none`}},
		{"plain behind nat", doc(hostBlock, []string{`private_key_file = "/k"`, `behind_nat = true`, `[[peer]]`, `name = "h2"`, `address = "198.18.0.2"`, `public_key = "` + testPubAlice + `"`}, blueBlock), []string{
			`h1.toml:10: network[0]: this host is behind NAT: a network that is not encrypted needs addresses both ways (set encrypted = true)`}},
		{"no key, no address", doc(hostBlock, []string{`[[peer]]`, `name = "h2"`}), []string{
			`h1.toml:4: peer[0].address: required key is missing`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("h1.toml", []byte(tc.in))
			if got := messages(t, err); !slices.Equal(got, tc.want) {
				t.Errorf("errors:\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestCheckPlainPeers(t *testing.T) {
	peers := []Peer{{Name: "h2", Address: netip.MustParseAddr("198.18.0.2")}, {Name: "laptop", HasPublicKey: true}}
	if err := CheckPlainPeers(false, false, []Peer{{Name: "bad"}}); err != nil {
		t.Errorf("a peer without a key is not roaming: %v", err)
	}
	if err := CheckPlainPeers(true, false, peers); err != nil {
		t.Errorf("encrypted: %v", err)
	}
	if err := CheckPlainPeers(false, false, peers[:1]); err != nil {
		t.Errorf("plain with addresses: %v", err)
	}
	if err := CheckPlainPeers(false, false, peers); err == nil {
		t.Error("plain with a roaming peer: no error")
	}
	if err := CheckPlainPeers(false, true, peers[:1]); err == nil {
		t.Error("plain on a host behind NAT: no error")
	}
}
