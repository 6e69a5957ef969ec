package gossip

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/vxwire/vxwire/internal/config"
)

// encodeNetState writes a network state as earlier versions persisted it.
func encodeNetState(clock uint64, es []netEntry) []byte {
	b := append([]byte(netStateMagic), netStateFormat)
	b = binary.BigEndian.AppendUint64(b, clock)
	return appendNetEntries(b, es)
}

// TestDecodeNetworkState: the live, valid definitions of an earlier
// version's state come back; tombstones and invalid ones do not, and a
// malformed state is an error.
func TestDecodeNetworkState(t *testing.T) {
	es := sampleMessages()[10].Nets // blue (valid), v6 (invalid: IPv6), gone (tombstone)
	got, err := DecodeNetworkState(encodeNetState(42, es))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "blue" || got[0].VNI != 300 || got[0].Subnet != es[0].Def.Subnet ||
		got[0].Gateway != es[0].Def.Gateway || got[0].Encrypted != es[0].Def.Encrypted || got[0].Egress != es[0].Def.Egress {
		t.Fatalf("decoded %+v, want blue only, as stored", got)
	}
	for _, b := range [][]byte{nil, []byte("vxwn"), []byte("vxwn\x02"), []byte(`[{"Name":"blue"}]`), append(encodeNetState(1, es), 0)} {
		if _, err := DecodeNetworkState(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeNetworkState(%q) = %v, want ErrMalformed", b, err)
		}
	}
}

// FuzzNetState decodes arbitrary bytes as a persisted network state: no
// panic, and every definition returned passes the config rules.
func FuzzNetState(f *testing.F) {
	f.Add(encodeNetState(42, sampleMessages()[10].Nets))
	f.Add(encodeNetState(0, nil))
	f.Add([]byte("vxwn"))
	f.Fuzz(func(t *testing.T, b []byte) {
		nets, err := DecodeNetworkState(b)
		if err != nil {
			return
		}
		for i := range nets {
			if err := config.CheckNetwork(&nets[i]); err != nil {
				t.Fatalf("definition that fails the rules returned: %v", err)
			}
		}
		if slices.ContainsFunc(nets, func(n config.Network) bool { return n.Name == "" }) {
			t.Fatal("nameless definition returned")
		}
	})
}
