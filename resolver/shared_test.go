package resolver

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// sharedNames adds Shared to fakeNames: clients[network][client] lists the
// other networks that client's container is attached to.
type sharedNames struct {
	*fakeNames
	clients map[string]map[netip.Addr][]string
}

var _ Shared = sharedNames{}

func (s sharedNames) Shares(network string, client netip.Addr, other string) bool {
	for _, o := range s.clients[network][client] {
		if o == other {
			return true
		}
	}
	return false
}

// TestSharedNetworks checks that a client attached to net1 and net2
// resolves net2's names through net1's server, and that a client on net1
// alone, asking the same question, still gets NXDOMAIN.
func TestSharedNetworks(t *testing.T) {
	names := sharedNames{
		fakeNames: newFakeNames().add("net1", "10.77.0.2", "web").add("net2", "10.78.0.5", "db"),
		clients: map[string]map[netip.Addr][]string{
			"net1": {netip.MustParseAddr("10.77.0.2"): {"net2"}},
		},
	}
	cfg := testConfig()
	cfg.Isolated = []string{"net2"}
	s := New(nil, nil, names, cfg, nil)
	ask := func(client, qname string) *dns.Msg {
		t.Helper()
		msg, err := newQuery(qname, dns.TypeA).Pack()
		if err != nil {
			t.Fatal(err)
		}
		var c netip.Addr
		if client != "" {
			c = netip.MustParseAddr(client)
		}
		resp, ok := s.AnswerLocalFrom(c, msg, nil)
		if !ok {
			t.Fatalf("%s from %q: not answered locally", qname, client)
		}
		r := new(dns.Msg)
		if err := r.Unpack(resp); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		client, qname string
		rcode         int
		addrs         []string
	}{
		{"10.77.0.2", "db.net2.", dns.RcodeSuccess, []string{"10.78.0.5"}},
		{"10.77.0.3", "db.net2.", dns.RcodeNameError, nil},
		{"", "db.net2.", dns.RcodeNameError, nil},
		{"10.77.0.2", "nobody.net2.", dns.RcodeNameError, nil},
		{"10.77.0.2", "web.", dns.RcodeSuccess, []string{"10.77.0.2"}},
	}
	for _, tt := range tests {
		r := ask(tt.client, tt.qname)
		got := aAddrs(r)
		if r.Rcode != tt.rcode || len(got) != len(tt.addrs) || len(got) > 0 && got[0] != tt.addrs[0] {
			t.Errorf("%s from %q: rcode %s, A %v; want %s, %v", tt.qname, tt.client,
				dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tt.rcode], tt.addrs)
		}
	}
}
