package gossip

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// simEnv names the member counts of TestGossipSim ("100,300,1000"); the
// simulation does not run without it (see `make scale-sim`).
const simEnv = "VXWIRE_GOSSIP_SIM"

// simConfig is what TestGossipSim is asked to do, from the environment.
type simConfig struct {
	sizes     []int
	transport string        // "mem" (memNet) or "udp" (loopback sockets)
	records   int           // records each member announces
	window    time.Duration // steady-state measurement
	// dilation stretches every gossip timing by this factor, so that
	// the members' CPU demand fits a small machine; times are divided by
	// it and rates multiplied before they are reported, so the figures
	// are in the cluster's own (production) time.
	dilation int
}

func simConfigFromEnv(t *testing.T) simConfig {
	sc := simConfig{transport: "mem", records: 10, window: 20 * time.Second, dilation: 1}
	for _, f := range strings.Split(os.Getenv(simEnv), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n >= MaxHosts {
			t.Fatalf("%s: %q is not a member count from 2 to %d", simEnv, f, MaxHosts-1)
		}
		sc.sizes = append(sc.sizes, n)
	}
	if v := os.Getenv(simEnv + "_TRANSPORT"); v != "" {
		if v != "mem" && v != "udp" {
			t.Fatalf("%s_TRANSPORT: %q is neither mem nor udp", simEnv, v)
		}
		sc.transport = v
	}
	envInt := func(suffix string, lo, hi int, into *int) {
		if v := os.Getenv(simEnv + suffix); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < lo || n > hi {
				t.Fatalf("%s%s: %q is not %d to %d", simEnv, suffix, v, lo, hi)
			}
			*into = n
		}
	}
	envInt("_RECORDS", 1, 200, &sc.records)
	if v := os.Getenv(simEnv + "_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 5*time.Minute {
			t.Fatalf("%s_WINDOW: %q is not a duration from 1s to 5m", simEnv, v)
		}
		sc.window = d
	}
	envInt("_DILATION", 1, 50, &sc.dilation)
	return sc
}

// TestGossipSim runs N members in one process with production timings and
// a cluster secret, each announcing a few records, and prints as RESULT
// lines (the format of tests/bench) how long a new record takes to reach
// every member, what each member sends and receives at its transport in
// steady state and while the record spreads, what one host joining costs,
// and the heap per member. It is gated by VXWIRE_GOSSIP_SIM.
func TestGossipSim(t *testing.T) {
	if os.Getenv(simEnv) == "" {
		t.Skip(simEnv + " is not set; run `make scale-sim`")
	}
	sc := simConfigFromEnv(t)
	// memberlist allocates an LZW table for every packet it compresses;
	// collected in one heap for a thousand members, that garbage takes
	// most of two cores. The figures measured here are bytes and times,
	// not CPU, so collect only when the heap nears a generous limit.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(8 << 30))
	for _, n := range sc.sizes {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) { runSim(t, sc, n) })
	}
}

// sim is one simulated cluster.
type sim struct {
	t       *testing.T
	sc      simConfig
	net     *memNet
	members []*Cluster
	traffic []*traffic
	tags    string // fields common to every RESULT line
}

var simSecret = []byte("gossip simulation secret")

// start starts member i, joining through seeds.
func (s *sim) start(i int, seeds []netip.AddrPort) (*Cluster, *traffic) {
	tr := new(traffic)
	cfg := Config{
		NodeName:  fmt.Sprintf("h%04d", i),
		Port:      DefaultPort,
		Seeds:     seeds,
		Secret:    simSecret,
		DeadAfter: DefaultDeadAfter * time.Duration(s.sc.dilation),
	}
	prod := Config{DeadAfter: DefaultDeadAfter}
	cfg.GossipInterval = deriveTimings(&prod).gossipInterval * time.Duration(s.sc.dilation)
	if s.sc.transport == "mem" {
		cfg.BindAddr = netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)})
		cfg.transport = func(*memberlist.Config) (memberlist.NodeAwareTransport, error) {
			mt, err := s.net.listen(netip.AddrPortFrom(cfg.BindAddr, DefaultPort))
			if err != nil {
				return nil, err
			}
			return newCountingTransport(mt, tr), nil
		}
	} else {
		cfg.BindAddr, cfg.Port = loopback, -1
		cfg.transport = func(mc *memberlist.Config) (memberlist.NodeAwareTransport, error) {
			nt, err := netTransport(mc)
			if err != nil {
				return nil, err
			}
			mc.BindPort = nt.GetAutoBindPort()
			mc.AdvertisePort = mc.BindPort
			return newCountingTransport(nt, tr), nil
		}
	}
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		s.t.Fatalf("member %d: %v", i, err)
	}
	s.t.Cleanup(func() { crash(c) })
	c.SetLocal(simRecords(i, s.sc.records))
	return c, tr
}

// simRecords are member i's n endpoints, with addresses unique across
// the cluster.
func simRecords(i, n int) []Record {
	out := make([]Record, n)
	for j := range out {
		k := i*256 + j + 1
		out[j] = Record{
			Network: "sim",
			Name:    fmt.Sprintf("h%04d-e%03d", i, j),
			IP:      netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}),
			MAC:     [6]byte{2, 0, 0, byte(k >> 16), byte(k >> 8), byte(k)},
		}
	}
	return out
}

// wall turns a duration of the cluster's time into wall-clock time.
func (s *sim) wall(d time.Duration) time.Duration { return d * time.Duration(s.sc.dilation) }

// since returns the cluster's time elapsed since t.
func (s *sim) since(t time.Time) time.Duration {
	return time.Since(t) / time.Duration(s.sc.dilation)
}

// result prints one RESULT line in the format of tests/bench.
func (s *sim) result(metric string, value any, extra ...string) {
	fmt.Printf("RESULT mode=gossip_sim metric=%s value=%v %s %s\n", metric, value, s.tags, strings.Join(extra, " "))
}

// snaps returns every member's counters.
func (s *sim) snaps() []trafficSnap {
	out := make([]trafficSnap, len(s.traffic))
	for i, tr := range s.traffic {
		out[i] = tr.snap()
	}
	return out
}

// rates reports the mean and largest per-member bytes per second out and
// in between two snapshots d apart in the cluster's time, and the packets out per member and s.
func (s *sim) rates(name string, before, after []trafficSnap, d time.Duration) (meanOut, meanIn float64) {
	var sumOut, sumIn, maxOut, maxIn, pkts, streams int64
	for i := range after {
		diff := after[i].sub(before[i])
		sumOut += diff.bytesOut()
		sumIn += diff.bytesIn()
		maxOut, maxIn = max(maxOut, diff.bytesOut()), max(maxIn, diff.bytesIn())
		pkts += diff.packetsOut
		streams += diff.streams
	}
	n, sec := float64(len(after)), d.Seconds()
	meanOut, meanIn = float64(sumOut)/n/sec, float64(sumIn)/n/sec
	s.result(name+"_out_bytes_per_s", fmt.Sprintf("%.0f", meanOut), fmt.Sprintf("max=%.0f", float64(maxOut)/sec))
	s.result(name+"_in_bytes_per_s", fmt.Sprintf("%.0f", meanIn), fmt.Sprintf("max=%.0f", float64(maxIn)/sec))
	s.result(name+"_packets_out_per_s", fmt.Sprintf("%.1f", float64(pkts)/n/sec))
	// Each stream is counted at both ends.
	s.result(name+"_streams_per_s", fmt.Sprintf("%.2f", float64(streams)/2/n/sec))
	return meanOut, meanIn
}

func runSim(t *testing.T, sc simConfig, n int) {
	s := &sim{t: t, sc: sc, net: newMemNet(), tags: fmt.Sprintf("members=%d transport=%s records=%d dilation=%d load1=%s", n, sc.transport, sc.records, sc.dilation, load1())}
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()

	begin := time.Now()
	s.members, s.traffic = make([]*Cluster, n), make([]*traffic, n)
	s.members[0], s.traffic[0] = s.start(0, nil)
	seeds := []netip.AddrPort{s.members[0].Addr()}
	// Start in batches, as hosts of a real cluster do not all boot in
	// the same millisecond, and so that joins do not all time out on a
	// loaded machine: each batch starts once the seed sees the previous
	// one, or after 15 s; the wait below checks that all see all.
	const batch = 50
	deadline := begin.Add(s.wall(time.Duration(n)*300*time.Millisecond + time.Minute))
	for lo := 1; lo < n; lo += batch {
		var wg sync.WaitGroup
		for i := lo; i < min(lo+batch, n); i++ {
			wg.Go(func() { s.members[i], s.traffic[i] = s.start(i, seeds) })
		}
		wg.Wait()
		next := time.Now().Add(s.wall(15 * time.Second))
		for int(s.members[0].numLive.Load()) < min(lo+batch, n) && time.Now().Before(next) {
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("%v: %d members started, the seed sees %d", time.Since(begin).Round(time.Second), min(lo+batch, n), s.members[0].numLive.Load())
	}
	var membersAt time.Time
	for last := time.Now(); ; {
		lo, recs := s.spread(n * sc.records)
		if lo == n && membersAt.IsZero() {
			membersAt = time.Now()
			s.result("join_members_s", fmt.Sprintf("%.1f", s.since(begin).Seconds()))
		}
		if lo == n && recs == n {
			s.result("join_records_s", fmt.Sprintf("%.1f", s.since(begin).Seconds()))
			break
		}
		// Pulls of new hosts' records beyond maxSends in flight are
		// dropped and repaired by push/pull, every 90 s at 1000 members:
		// give up waiting for that after a while.
		if lo == n && s.since(membersAt) > 30*time.Second {
			s.result("join_records_complete_members", recs, "after_s=30")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: fewest members seen %d of %d, %d of %d members hold every record", time.Since(begin), lo, n, recs, n)
		}
		if time.Since(last) > 20*time.Second {
			t.Logf("%v: fewest members seen %d of %d, %d hold every record", time.Since(begin).Round(time.Second), lo, n, recs)
			last = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}

	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	s.result("heap_kib_per_member", (int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/1024/int64(n))
	s.result("goroutines_per_member", fmt.Sprintf("%.1f", float64(runtime.NumGoroutine()-g0)/float64(n)))
	s.result("pushpull_state_bytes", len((*delegate)(s.members[n/2]).LocalState(false)))
	mid := s.members[n/2]
	mid.mu.Lock()
	s.result("record_state_bytes", len(encode(nil, &message{Type: msgState, State: mid.local})))
	mid.mu.Unlock()

	// Let the joins' traffic settle, then measure steady state.
	time.Sleep(s.wall(5 * time.Second))
	before := s.snaps()
	t0 := time.Now()
	time.Sleep(s.wall(sc.window))
	steadyOut, steadyIn := s.rates("steady", before, s.snaps(), s.since(t0))

	// A new endpoint on one member, three times from different members.
	for trial, src := range []int{0, n / 3, n - 1} {
		recs := simRecords(src, sc.records+1)
		ip := recs[sc.records].IP
		before := s.snaps()
		t0 := time.Now()
		s.members[src].SetLocal(recs)
		pending := slices.Clone(s.members)
		for len(pending) > 0 {
			if s.since(t0) > 30*time.Second {
				t.Fatalf("record reached only %d of %d members", n-len(pending), n)
			}
			pending = slices.DeleteFunc(pending, func(c *Cluster) bool {
				_, _, ok := c.Lookup("sim", ip)
				return ok
			})
			time.Sleep(2 * time.Millisecond)
		}
		d := s.since(t0)
		s.result("convergence_ms", d.Milliseconds(), fmt.Sprintf("trial=%d", trial))
		after := s.snaps()
		out, in := s.rates("update", before, after, d)
		s.result("update_extra_bytes_per_member", fmt.Sprintf("%.0f", (out-steadyOut+in-steadyIn)/2*d.Seconds()), fmt.Sprintf("trial=%d", trial))
		time.Sleep(s.wall(2 * time.Second)) // let the retransmissions end
	}

	// One more host joins a settled cluster.
	// It is done when every member sees it and it holds what the seed
	// held, plus its own records.
	before = s.snaps()
	t0 = time.Now()
	want := s.held(s.members[0]) + sc.records
	c, tr := s.start(n, seeds)
	s.members, s.traffic = append(s.members, c), append(s.traffic, tr)
	before = append(before, trafficSnap{})
	for {
		lo, _ := s.spread(0)
		if lo == n+1 && s.held(c) >= want {
			break
		}
		if s.since(t0) > time.Minute {
			t.Fatalf("a joining host: fewest members seen %d of %d, it holds %d of %d records", lo, n+1, s.held(c), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := s.since(t0)
	s.result("join_one_ms", d.Milliseconds())
	after := s.snaps()
	var cluster int64
	for i := range after {
		cluster += after[i].sub(before[i]).bytesOut()
	}
	s.result("join_one_new_host_bytes", after[n].bytesIn()+after[n].bytesOut())
	s.result("join_one_cluster_bytes_out", fmt.Sprintf("%.0f", float64(cluster)-steadyOut*float64(n)*d.Seconds()))
	s.result("dropped_packets", s.net.dropped.Load())
}

// spread returns the fewest live members any member sees and how many
// members hold want records.
func (s *sim) spread(want int) (fewest, complete int) {
	fewest = len(s.members)
	for _, c := range s.members {
		fewest = min(fewest, int(c.numLive.Load()))
		if s.held(c) == want {
			complete++
		}
	}
	return fewest, complete
}

// held returns how many records c holds.
func (s *sim) held(c *Cluster) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tab.visible())
}

// load1 is the machine's one-minute load average when the run starts
// (Linux), which tells how much of the CPU the simulation had.
func load1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "n/a"
}
