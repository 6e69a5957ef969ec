package tests

// Flooding with unknown unicast, under a flood rate the operator set. The
// topology is portTopo's (adversary_port_test.go), with h1's
// flood_rate and flood_burst lowered to 100.

import (
	"fmt"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

// endpointRx returns the frames endpoint name has sent into the switch
// (its rx counter) in st.
func endpointRx(st api.Status, name string) uint64 {
	for _, ep := range st.Endpoints {
		if ep.Name == name {
			return ep.Counters.RxFrames
		}
	}
	return 0
}

// endpointTAP returns the TAP counters of endpoint name in st, zero when
// it has none.
func endpointTAP(st api.Status, name string) api.TAPStats {
	for _, ep := range st.Endpoints {
		if ep.Name == name && ep.TAP != nil {
			return *ep.TAP
		}
	}
	return api.TAPStats{}
}

// peerTx returns the frames sent to peer name in st.
func peerTx(st api.Status, name string) uint64 {
	for _, pe := range st.Peers {
		if pe.Name == name {
			return pe.Counters.TxFrames
		}
	}
	return 0
}

// floodSettled waits until the frames h's switch has read from endpoint
// name (passed or counted as flood_limit) stop growing, and returns the
// status that shows them all.
func (e *env) floodSettled(h *host, name string) api.Status {
	e.t.Helper()
	var after api.Status
	seen, polled := uint64(0), false
	e.eventually(readyTimeout, "the switch has read the whole flood", func() error {
		st, err := e.status(h)
		if err != nil {
			return err
		}
		now := endpointRx(st, name) + drops(st, api.DropFloodLimit)
		if now != seen || !polled {
			seen, after, polled = now, st, true
			return fmt.Errorf("still counting: %d", now)
		}
		return nil
	})
	return after
}

// TestAdversaryUnknownUnicastFlood: with flood_rate = 100 and
// flood_burst = 100 on h1, the attacker's container sends 3000 frames to
// a MAC nobody has, from its own MAC and address, in about 1.5 s. Such
// frames are flooded to every peer and every local container like
// broadcast. The probe first: 50 of them, under the burst, all go out to
// h2 and none is counted. Then the flood: at most the configured burst
// plus the configured rate pass (the defaults, 2000 and 1000/s, would
// let all 3000 through, so the setting is what holds them), the rest are
// counted as flood_limit, and the victim's ping to c2 keeps working.
// Before the limit existed every frame was replicated to every peer.
func TestAdversaryUnknownUnicastFlood(t *testing.T) {
	e := newEnv(t)
	p := e.portTopoWith("flood_rate = 100\nflood_burst = 100\n")
	e.mustPing(p.v, "10.77.0.20")
	raw := e.rawSocket(p.a, "eth0")
	ma := mac(e.linkMAC(p.a, "eth0"))
	frame := udpFrame(mac("02:00:00:00:99:99"), ma, "10.77.0.10", "10.77.0.20", 4444, 9, make([]byte, 64))

	// The probe: the attacker has not flooded yet, so its bucket holds
	// the whole burst; 50 frames all go to h2.
	before := e.mustStatus(p.h1)
	for range 50 {
		e.mustSend(raw, frame)
	}
	probe := e.floodSettled(p.h1, "a")
	if got := peerTx(probe, "h2") - peerTx(before, "h2"); got < 50 {
		t.Fatalf("%d of 50 unknown-unicast frames under the burst went to h2", got)
	}
	if got := drops(probe, api.DropFloodLimit) - drops(before, api.DropFloodLimit); got != 0 {
		t.Fatalf("%d frames under the burst counted as flood_limit", got)
	}

	// 3000 frames at about 2000 a second, twenty times the configured
	// rate. Up to the burst, the rate over the flood and the time the
	// switch may still be reading it, and the victim's ping may pass.
	e.floodDuringPing(p, raw, frame, 3000, 100, 50*time.Millisecond, "unknown-unicast",
		func(elapsed time.Duration) uint64 { return uint64(100 + 100*(elapsed.Seconds()+1) + 20) })
}

// floodDuringPing sends frame from raw up to total times within 5 s,
// pausing pause after every burst frames, while the victim pings the
// other host's container; then, once the counters settle, it checks that
// at most allowed(elapsed) frames passed a's port and went to h2, and
// that the rest were counted as flood_limit.
func (e *env) floodDuringPing(p portTopo, raw *rawSocket, frame []byte, total, burst int, pause time.Duration,
	what string, allowed func(elapsed time.Duration) uint64) {
	e.t.Helper()
	before := e.mustStatus(p.h1)
	type result struct {
		sent    int
		elapsed time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start, sent := time.Now(), 0
		for i := 0; i < total && time.Since(start) < 5*time.Second; i++ {
			if raw.send(frame) == nil {
				sent++
			}
			if i%burst == burst-1 {
				time.Sleep(pause)
			}
		}
		done <- result{sent, time.Since(start)}
	}()
	e.mustPing(p.v, "10.77.0.20")
	r := <-done
	if r.sent < total/2 {
		e.t.Fatalf("only %d of %d frames sent in %v", r.sent, total, r.elapsed)
	}
	// The TAP itself drops what the daemon does not read in time, so the
	// switch sees fewer frames than were sent: it is judged on those.
	after := e.floodSettled(p.h1, "a")
	passed := endpointRx(after, "a") - endpointRx(before, "a")
	limited := drops(after, api.DropFloodLimit) - drops(before, api.DropFloodLimit)
	toH2 := peerTx(after, "h2") - peerTx(before, "h2")
	most := allowed(r.elapsed)
	e.t.Logf("flood of %d %s frames in %v: the switch read %d, passed %d, sent %d to h2, counted %d as flood_limit",
		r.sent, what, r.elapsed, passed+limited, passed, toH2, limited)
	if limited == 0 || passed > most || toH2 > most {
		e.t.Errorf("%s flood not limited: %d passed and %d went to h2 (at most %d may), %d counted as flood_limit",
			what, passed, toH2, most, limited)
	}
	e.mustPing(p.v, "10.77.0.20")
}
