package crypto

import (
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

// sendRecorder is a conn.Bind that records the datagram lengths of each
// Send. With pmtu set, it refuses a batch of several datagrams of which
// one is larger, as the kernel refuses a GSO send.
type sendRecorder struct {
	conn.Bind
	pmtu  int
	sends [][]int
}

func (r *sendRecorder) Send(bufs [][]byte, _ conn.Endpoint) error {
	var s []int
	for _, b := range bufs {
		if r.pmtu > 0 && len(bufs) > 1 && len(b) > r.pmtu {
			return &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmmsg", syscall.EMSGSIZE)}
		}
		s = append(s, len(b))
	}
	r.sends = append(r.sends, s)
	return nil
}

// TestSendFittingSplitsRefusedBatch: a batch the kernel refuses because a
// datagram is above the path MTU goes again one datagram at a time, which
// the kernel fragments; before, the whole batch was lost.
func TestSendFittingSplitsRefusedBatch(t *testing.T) {
	ep, err := conn.NewStdNetBind().ParseEndpoint("198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	rec := &sendRecorder{pmtu: 1300}
	if err := sendFitting(rec, [][]byte{make([]byte, 1400), make([]byte, 1400), make([]byte, 200)}, ep); err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{1400}, {1400}, {200}}; !slices.EqualFunc(rec.sends, want, slices.Equal) {
		t.Fatalf("sent as %v, want %v", rec.sends, want)
	}
	rec.sends = nil
	if err := sendFitting(rec, [][]byte{make([]byte, 1200), make([]byte, 1200)}, ep); err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{1200, 1200}}; !slices.EqualFunc(rec.sends, want, slices.Equal) {
		t.Fatalf("a batch that fits sent as %v, want %v", rec.sends, want)
	}
}

// TestPathProbeSendsLargestAlone: once a second per destination, the
// largest datagram of a batch is sent alone, so that the kernel sets DF
// on it (it does not on a GSO send); batches of small datagrams, and other
// batches within the second, go in one Send.
func TestPathProbeSendsLargestAlone(t *testing.T) {
	bind := conn.NewStdNetBind()
	a, err := bind.ParseEndpoint("198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bind.ParseEndpoint("198.18.0.2:51820")
	if err != nil {
		t.Fatal(err)
	}
	rec := &sendRecorder{}
	var p pathProbe
	batch := func(sizes ...int) [][]byte {
		var bufs [][]byte
		for _, n := range sizes {
			bufs = append(bufs, make([]byte, n))
		}
		return bufs
	}
	now := time.Now().UnixNano()
	steps := []struct {
		ep    conn.Endpoint
		at    time.Duration
		sizes []int
		want  [][]int
	}{
		{a, 0, []int{100, 100}, [][]int{{100, 100}}},                             // small: nothing to learn, not taken
		{a, 0, []int{300, 1400, 1400, 200}, [][]int{{300}, {1400}, {1400, 200}}}, // the probe
		{a, 500 * time.Millisecond, []int{1400, 1400}, [][]int{{1400, 1400}}},    // within the second
		{b, 500 * time.Millisecond, []int{1400, 1400}, [][]int{{1400}, {1400}}},  // another destination
		{a, 1100 * time.Millisecond, []int{1400, 1400}, [][]int{{1400}, {1400}}},
	}
	for i, s := range steps {
		rec.sends = nil
		if err := p.send(rec, batch(s.sizes...), s.ep, now+int64(s.at)); err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(rec.sends, s.want, slices.Equal) {
			t.Fatalf("step %d: sent as %v, want %v", i, rec.sends, s.want)
		}
	}
}
