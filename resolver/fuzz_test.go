package resolver

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzHandler feeds message bytes to the server both ways a query arrives:
// raw bytes into the wire path (as the UDP and TCP loops do) and, when
// miekg/dns can parse them, the parsed message into Handler with a
// recorder. Invariants: no panic; any answer is a valid message that
// miekg/dns unpacks, a response with the query's ID; UDP answers respect
// the client's size.
func FuzzHandler(f *testing.F) {
	for _, m := range []*dns.Msg{
		newQuery("web.", dns.TypeA),
		newQuery("api.net1.", dns.TypeA),
		newQuery("big.", dns.TypeA),
		newQuery("web.", dns.TypeAAAA),
		newQuery("nope.", dns.TypeA),
		newQuery("2.0.77.10.in-addr.arpa.", dns.TypePTR),
		newQuery("example.com.", dns.TypeMX),
	} {
		f.Add(mustPack(f, m))
		m.SetEdns0(4096, true)
		f.Add(mustPack(f, m))
	}
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0x80, 0x41})
	names, cfg := bigService(100)
	srv := New(nil, nil, names, cfg, nil)
	out := make([]byte, 0, maxMsgSize)
	var q query

	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tr := range []transport{udp, tcp} {
			resp, _, fwd := srv.answer(b, out, tr, netip.MustParseAddr("10.0.0.9"), &q)
			if fwd {
				t.Fatal("forward requested while forwarding is off")
			}
			if resp == nil {
				continue
			}
			checkAnswer(t, b, resp)
			if tr == udp && len(resp) > udpLimit(&q) {
				t.Fatalf("udp answer %d bytes over limit %d", len(resp), udpLimit(&q))
			}
		}
		var m dns.Msg
		if m.Unpack(b) != nil {
			return
		}
		for _, network := range []string{"udp", "tcp"} {
			rec := newRecorder(network)
			srv.Handler().ServeDNS(rec, &m)
			if rec.writes == 0 {
				continue
			}
			if rec.err != nil {
				t.Fatalf("handler wrote an invalid message %x: %v", rec.raw, rec.err)
			}
			if rec.msg.Id != m.Id || !rec.msg.Response {
				t.Fatalf("answer id %d qr %v, query id %d", rec.msg.Id, rec.msg.Response, m.Id)
			}
		}
	})
}

func checkAnswer(t *testing.T, query, resp []byte) {
	t.Helper()
	var r dns.Msg
	if err := r.Unpack(resp); err != nil {
		t.Fatalf("invalid answer %x to %x: %v", resp, query, err)
	}
	if r.Id != binary.BigEndian.Uint16(query) || !r.Response {
		t.Fatalf("answer id %d qr %v to %x", r.Id, r.Response, query)
	}
}
