package encap

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/vxwire/vxwire/internal/ether"
	"github.com/vxwire/vxwire/internal/ipv4"
)

// flow describes the fields of a test frame.
type flow struct {
	dstMAC, srcMAC [6]byte
	vlan           uint16 // 0: untagged
	v6             bool
	src, dst       [16]byte // IPv4 uses the first 4 bytes
	proto          byte
	sport, dport   uint16
	payload        []byte
	ttl            byte
	fragOff        uint16 // IPv4 flags+fragment offset field
}

// frame builds an Ethernet frame for f.
func (f flow) frame() []byte {
	b := append([]byte(nil), f.dstMAC[:]...)
	b = append(b, f.srcMAC[:]...)
	if f.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, ether.TypeVLAN)
		b = binary.BigEndian.AppendUint16(b, f.vlan)
	}
	l4 := binary.BigEndian.AppendUint16(nil, f.sport)
	l4 = binary.BigEndian.AppendUint16(l4, f.dport)
	l4 = append(l4, make([]byte, 16)...) // rest of a TCP header, or UDP + data
	l4 = append(l4, f.payload...)
	if f.v6 {
		b = binary.BigEndian.AppendUint16(b, ether.TypeIPv6)
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6], ip[7] = f.proto, f.ttl
		copy(ip[8:], f.src[:])
		copy(ip[24:], f.dst[:])
		return append(append(b, ip...), l4...)
	}
	b = binary.BigEndian.AppendUint16(b, ether.TypeIPv4)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], uint16(len(f.payload))) // IP ID varies
	binary.BigEndian.PutUint16(ip[6:], f.fragOff)
	ip[8], ip[9] = f.ttl, f.proto
	copy(ip[12:], f.src[:4])
	copy(ip[16:], f.dst[:4])
	return append(append(b, ip...), l4...)
}

func baseFlow() flow {
	return flow{
		dstMAC: [6]byte{0x02, 0x42, 0xac, 0x11, 0x00, 0x02},
		srcMAC: [6]byte{0x02, 0x42, 0xac, 0x11, 0x00, 0x03},
		src:    [16]byte{10, 0, 0, 2},
		dst:    [16]byte{10, 0, 0, 3},
		proto:  ipv4.ProtoTCP,
		sport:  40000,
		dport:  443,
		ttl:    64,
	}
}

func TestSourcePortRange(t *testing.T) {
	v4 := baseFlow().frame()
	f6 := baseFlow()
	f6.v6 = true
	v6 := f6.frame()
	tests := []struct {
		name  string
		frame []byte
	}{
		{"nil", nil},
		{"one byte", []byte{1}},
		{"runt", v4[:13]},
		{"ethernet only", v4[:14]},
		{"arp", append(append([]byte(nil), v4[:12]...), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)},
		{"ipv4 truncated", v4[:30]},
		{"ipv4 no ports", v4[:34]},
		{"ipv4 half ports", v4[:36]},
		{"ipv4 tcp", v4},
		{"ipv4 bad ihl", func() []byte { b := append([]byte(nil), v4...); b[14] = 0x41; return b }()},
		{"ipv4 huge ihl", func() []byte { b := append([]byte(nil), v4...); b[14] = 0x4f; return b }()},
		{"ipv4 wrong version", func() []byte { b := append([]byte(nil), v4...); b[14] = 0x65; return b }()},
		{"ipv6 truncated", v6[:50]},
		{"ipv6 udp", v6},
		{"ipv6 ext header truncated", func() []byte { b := append([]byte(nil), v6[:54]...); b[20] = ipv6HopByHop; return b }()},
		{"ipv6 ext header length past end", func() []byte {
			b := append([]byte(nil), v6...)
			b[20], b[54], b[55] = ipv6Routing, ipv4.ProtoUDP, 0xff
			return b
		}()},
		{"vlan truncated", append(append([]byte(nil), v4[:12]...), 0x81, 0x00, 0)},
		{"double vlan", append(append([]byte(nil), v4[:12]...), 0x88, 0xa8, 0, 5, 0x81, 0, 0, 6, 0x08, 0x00)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := SourcePort(tt.frame)
			if p < SourcePortMin {
				t.Fatalf("SourcePort = %d, below %d", p, SourcePortMin)
			}
			if SourcePort(tt.frame) != p {
				t.Fatal("SourcePort is not deterministic")
			}
		})
	}
}

// TestSourcePortStable checks that fields outside the flow do not move the
// port, and that the flow fields do.
func TestSourcePortStable(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		base := baseFlow()
		base.v6 = v6
		want := SourcePort(base.frame())
		same := []func(*flow){
			func(f *flow) { f.payload = []byte("hello") },
			func(f *flow) { f.payload = make([]byte, 1400) },
			func(f *flow) { f.ttl = 1 },
		}
		for i, mod := range same {
			f := base
			mod(&f)
			if got := SourcePort(f.frame()); got != want {
				t.Errorf("v6=%v same-flow change %d moved the port %d -> %d", v6, i, want, got)
			}
		}
		differ := []func(*flow){
			func(f *flow) { f.sport++ },
			func(f *flow) { f.dport = 80 },
			func(f *flow) { f.src[3]++ },
			func(f *flow) { f.dst[3]++ },
			func(f *flow) { f.proto = ipv4.ProtoUDP },
			func(f *flow) { f.srcMAC[5]++ },
			func(f *flow) { f.dstMAC[0] = 0x06 },
			func(f *flow) { f.vlan = 10 },
		}
		for i, mod := range differ {
			f := base
			mod(&f)
			// A 14-bit hash collides for 1 in 16384 changes; these fixed
			// inputs do not.
			if got := SourcePort(f.frame()); got == want {
				t.Errorf("v6=%v flow change %d kept port %d", v6, i, got)
			}
		}
	}
}

// TestSourcePortFragments checks that IPv4 fragments of one datagram (with
// and without ports in them) share a port.
func TestSourcePortFragments(t *testing.T) {
	first := baseFlow()
	first.proto = ipv4.ProtoUDP
	first.fragOff = 0x2000 // MF, offset 0
	later := first
	later.fragOff = 0x00b9          // offset 185*8, last fragment
	later.sport, later.dport = 1, 2 // payload bytes, not ports
	if a, b := SourcePort(first.frame()), SourcePort(later.frame()); a != b {
		t.Fatalf("fragments got ports %d and %d", a, b)
	}
}

// TestSourcePortSpread checks that random flows fill the port range evenly
// (a chi-square test over 64 buckets).
func TestSourcePortSpread(t *testing.T) {
	const (
		flows   = 64 * 1024
		buckets = 64
	)
	rng := rand.New(rand.NewPCG(1, 2))
	var count [buckets]int
	for i := 0; i < flows; i++ {
		f := baseFlow()
		binary.BigEndian.PutUint32(f.src[:], rng.Uint32())
		f.sport = uint16(rng.Uint32())
		if i%2 == 0 {
			f.v6 = true
			binary.BigEndian.PutUint64(f.dst[8:], rng.Uint64())
		}
		p := SourcePort(f.frame())
		count[int(p-SourcePortMin)*buckets/(SourcePortMax-SourcePortMin+1)]++
	}
	exp := float64(flows) / buckets
	chi2 := 0.0
	for _, c := range count {
		d := float64(c) - exp
		chi2 += d * d / exp
	}
	// 63 degrees of freedom: p = 0.001 at about 103.4.
	if chi2 > 103.4 {
		t.Fatalf("chi-square %.1f over %d buckets: %v", chi2, buckets, count)
	}
}

func TestSourcePortAllocs(t *testing.T) {
	frame := baseFlow().frame()
	allocs := testing.AllocsPerRun(100, func() {
		_ = SourcePort(frame)
	})
	if allocs != 0 {
		t.Fatalf("SourcePort allocates %v times, want 0", allocs)
	}
}

func FuzzSourcePort(f *testing.F) {
	f.Add(baseFlow().frame())
	f6 := baseFlow()
	f6.v6, f6.vlan = true, 7
	f.Add(f6.frame())
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p := SourcePort(b); p < SourcePortMin {
			t.Fatalf("port %d out of range", p)
		}
	})
}

func BenchmarkSourcePort(b *testing.B) {
	for _, bc := range []struct {
		name string
		v6   bool
	}{{"ipv4", false}, {"ipv6", true}} {
		b.Run(bc.name, func(b *testing.B) {
			f := baseFlow()
			f.v6 = bc.v6
			frame := f.frame()
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			var sink uint16
			for i := 0; i < b.N; i++ {
				sink += SourcePort(frame)
			}
			_ = sink
		})
	}
}
