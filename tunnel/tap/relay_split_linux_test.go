package tap

import (
	"testing"
	"time"
)

// TestNativeRelaySplit moves a real TCP stream between two TAPs through
// ReadSplit: the segments' headers, with checksums summed over payloads
// left in the superframes, reach the receiving kernel, which drops any
// segment whose checksum is wrong, and the transfer completes.
func TestNativeRelaySplit(t *testing.T) {
	requireRoot(t)
	p := newTestPairSplit(t, true)
	ping(t, p.pathA, p.addr(1), p.addr(2))
	transfer(t, p, p.addr(2), 32<<20, 60*time.Second)
	sa, sb := p.a.Stats(), p.b.Stats()
	if sa.RxSuperframes == 0 {
		t.Error("the sender's TAP delivered no TSO superframes")
	}
	if sb.TxBadChecksum != 0 || drops(sa)+drops(sb) != 0 {
		t.Errorf("bad checksums %d, drops: a %d, b %d", sb.TxBadChecksum, drops(sa), drops(sb))
	}
}
