package tests

//  PFX-c1 10.77.0.10                                   PFX-c2 10.77.0.20
//    eth0 (TAP)  -- one TCP connection -------------->   eth0 (TAP)
//  vxwire up (PFX-h1)  <- SIGHUP x100                  vxwire up (PFX-h2)
//     (network red added and removed on each reload)
//  PFX-u1 198.18.0.1/24 ============ veth ============ PFX-u2 198.18.0.2/24
//
//  TestChurnAttachDetach uses h1 alone: container PFX-cx is attached to
//  blue and detached again through the API, 2000 times.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

const (
	// reloads is how many SIGHUPs TestChurnReloads sends.
	reloads = 100
	// reloadWait bounds the wait for one reload to be applied.
	reloadWait = 10 * time.Second
	// churnCycles is how many attach/detach cycles TestChurnAttachDetach
	// measures, after churnWarmup cycles that let caches and pools fill
	// and the resident set reach its plateau (see the test).
	churnCycles = 1000
	churnWarmup = 3000
)

// stopReader yields pseudo-random bytes until stop is closed or its
// deadline passes, then EOF.
type stopReader struct {
	src   io.Reader
	stop  <-chan struct{}
	until time.Time
}

func (r *stopReader) Read(b []byte) (int, error) {
	select {
	case <-r.stop:
		return 0, io.EOF
	default:
	}
	if time.Now().After(r.until) {
		return 0, io.EOF
	}
	return r.src.Read(b)
}

// TestChurnReloads sends 100 SIGHUPs to h1 while one TCP connection
// carries data from c1 to c2; each reload adds or removes network red.
// Every reload must be applied, and the connection must end with all its
// data, the same SHA-256, on the same connection.
func TestChurnReloads(t *testing.T) {
	e := newEnv(t)
	h1, h2 := e.twoHosts()
	c1, c2 := e.container("c1"), e.container("c2")
	conf1 := func(withRed bool) hostConf {
		c := hostConf{peers: []*host{h2}, networks: []netConf{blue},
			endpoints: []epConf{{network: "blue", name: "c1", ns: c1, addr: "10.77.0.10"}}}
		if withRed {
			c.networks = append(c.networks, red)
		}
		return c
	}
	d1 := e.startDaemon(h1, e.writeConfig(h1, conf1(false)))
	d2 := e.startDaemon(h2, e.writeConfig(h2, hostConf{peers: []*host{h1}, networks: []netConf{blue},
		endpoints: []epConf{{network: "blue", name: "c2", ns: c2, addr: "10.77.0.20"}}}))
	d1.waitReady("c1")
	d2.waitReady("c2")
	e.mustPing(c1, "10.77.0.20")

	stop := make(chan struct{})
	var reloadErr error
	var done sync.WaitGroup
	done.Add(1)
	go func() {
		defer done.Done()
		defer close(stop)
		for i := range reloads {
			before := strings.Count(d1.logText(), `msg=reloaded`)
			e.writeConfig(h1, conf1(i%2 == 0))
			if err := syscall.Kill(d1.cmd.Process.Pid, syscall.SIGHUP); err != nil {
				reloadErr = err
				return
			}
			if err := poll(reloadWait, func() error {
				if strings.Contains(d1.logText(), "reload refused") {
					return permanent(fmt.Errorf("reload %d refused", i+1))
				}
				if n := strings.Count(d1.logText(), `msg=reloaded`); n <= before {
					return fmt.Errorf("reload %d not applied yet", i+1)
				}
				return nil
			}); err != nil {
				reloadErr = err
				return
			}
		}
	}()
	src := &stopReader{src: rand.NewChaCha8([32]byte{'h', 'u', 'p'}), stop: stop, until: time.Now().Add(3 * time.Minute)}
	sent, elapsed := e.transferFrom(c1, c2, "10.77.0.20", src, 4*time.Minute)
	done.Wait()
	if reloadErr != nil {
		t.Fatal(reloadErr)
	}
	t.Logf("%d reloads during one TCP connection: %d MiB in %v, SHA-256 equal", reloads, sent>>20, elapsed.Round(time.Millisecond))
	if n := strings.Count(d1.logText(), `msg=reloaded`); n != reloads {
		t.Errorf("h1 logged %d reloads, want %d", n, reloads)
	}
	e.mustPing(c1, "10.77.0.20")
}

// TestChurnAttachDetach attaches and detaches one container through the
// API churnCycles times after churnWarmup cycles: goroutines, OS threads,
// open descriptors, the live Go heap and the resident set of the daemon
// must be back at their level after the warm-up, within 5 % (and, for the
// small counts, within 2).
//
// The warm-up is long because a fresh daemon's resident set first grows
// to a plateau that does not depend on the number of cycles. Each cycle
// leaves garbage (netlink replies, snapshots), so the Go heap runs up to
// its goal, twice the live heap, between collections, and the runtime
// keeps up to 10 % more than that goal resident rather than returning
// freed pages to the kernel at once; binary pages of code run for the
// first time are mapped in too. The less garbage a cycle leaves, the more
// cycles the climb takes: since an attach no longer rebuilds everything
// (tunnel/incremental.go), the resident set was 29.2 MiB after 1000
// cycles, 31.7 after 2000 and 32.0 after 3000, flat (32.0 → 32.0) over
// the 1000 measured after those 3000. Measured on a daemon with a
// 9.5 MiB live heap, its resident set was 27.4 MiB after 100 cycles, 30.4
// after 600, 31.0 after 1100, 31.1 after 2100 and 31.3 after 3100, while
// the heap the runtime holds from the kernel (HeapSys) stayed at 23.3 MiB
// from cycle 100 on and the daemon kept 9 OS threads; returning free
// pages to the kernel (debug.FreeOSMemory) at the end brought it down to
// 23.0 MiB. Measured from cycle 100, as this test did before, the climb
// to the plateau looked like a leak of 0.6 KiB a cycle.
//
// Measured from the plateau, a leak of more than about 1.6 KiB a cycle
// (5 % of the resident set over churnCycles) fails the resident-set
// check, one of more than about 0.5 KiB in the Go heap fails the heap
// check, and a goroutine, thread or descriptor left by each cycle fails
// the count checks. One 4 KiB page leaked outside the Go heap on each
// attach made the resident set grow by 11.7 % here, a failure.
func TestChurnAttachDetach(t *testing.T) {
	e := newEnv(t)
	h1, _ := e.twoHosts()
	cx := e.container("cx")
	d := e.startDaemon(h1, e.writeConfig(h1, hostConf{networks: []netConf{blue}}))
	d.waitReady()
	c := api.NewClient(e.socket(h1))
	cycle := func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.Attach(ctx, api.AttachRequest{Network: "blue", Name: "cx", NetNS: cx.path()}); err != nil {
			t.Fatalf("cycle %d: attach: %v", i, err)
		}
		if err := c.Detach(ctx, api.DetachRequest{Network: "blue", Name: "cx"}); err != nil {
			t.Fatalf("cycle %d: detach: %v", i, err)
		}
	}
	start := time.Now()
	for i := range churnWarmup {
		cycle(i)
	}
	warm := time.Since(start)
	before := e.mustStatus(h1).Process
	procBefore := procStatus(t, d.cmd.Process.Pid)
	start = time.Now()
	for i := range churnCycles {
		cycle(churnWarmup + i)
	}
	took := time.Since(start)
	// Goroutines of the last detach may still be ending.
	var after api.ProcessStats
	var procAfter map[string]int
	err := poll(10*time.Second, func() error {
		after = e.mustStatus(h1).Process
		procAfter = procStatus(t, d.cmd.Process.Pid)
		if !nearCount(after.Goroutines, before.Goroutines, 2) || !nearCount(after.FDs, before.FDs, 2) ||
			!nearCount(procAfter["Threads"], procBefore["Threads"], 2) {
			return fmt.Errorf("goroutines %d → %d, threads %d → %d, fds %d → %d", before.Goroutines, after.Goroutines,
				procBefore["Threads"], procAfter["Threads"], before.FDs, after.FDs)
		}
		return nil
	})
	t.Logf("%d warm-up cycles in %v; %d attach/detach cycles in %v (%v each): goroutines %d → %d, threads %d → %d, fds %d → %d, live heap %.1f → %.1f MiB, rss %.1f → %.1f MiB (anonymous %.1f → %.1f, file %.1f → %.1f)",
		churnWarmup, warm.Round(time.Millisecond), churnCycles, took.Round(time.Millisecond), (took / churnCycles).Round(time.Microsecond),
		before.Goroutines, after.Goroutines, procBefore["Threads"], procAfter["Threads"], before.FDs, after.FDs,
		float64(before.HeapBytes)/(1<<20), float64(after.HeapBytes)/(1<<20),
		float64(before.RSSBytes)/(1<<20), float64(after.RSSBytes)/(1<<20),
		float64(procBefore["RssAnon"])/(1<<10), float64(procAfter["RssAnon"])/(1<<10),
		float64(procBefore["RssFile"])/(1<<10), float64(procAfter["RssFile"])/(1<<10))
	if before.Goroutines == 0 || before.FDs == 0 || before.HeapBytes == 0 || before.RSSBytes == 0 || procBefore["Threads"] == 0 {
		t.Fatalf("no process figures: status %+v, /proc %v", before, procBefore)
	}
	if err != nil {
		t.Errorf("after %d cycles: %v; want each within 5 %% of its start", churnCycles, err)
	}
	if !nearCount(int(after.HeapBytes), int(before.HeapBytes), 0) {
		t.Errorf("live heap went from %d to %d bytes over %d cycles, more than 5 %%", before.HeapBytes, after.HeapBytes, churnCycles)
	}
	// Only growth is a failure: the runtime may return free pages to the
	// kernel at any time, which shrinks the resident set.
	if grew := float64(after.RSSBytes)/float64(before.RSSBytes) - 1; grew > 0.05 {
		t.Errorf("rss went from %d to %d bytes over %d cycles, %.1f %% more; want at most 5 %%", before.RSSBytes, after.RSSBytes, churnCycles, 100*grew)
	}
}

// procStatus returns the numeric fields of /proc/PID/status that
// TestChurnAttachDetach reads: Threads, and RssAnon and RssFile in KiB.
func procStatus(t *testing.T, pid int) map[string]int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, k := range []string{"Threads", "RssAnon", "RssFile"} {
			if v, ok := strings.CutPrefix(line, k+":"); ok {
				f := strings.Fields(v)
				if len(f) == 0 {
					t.Fatalf("/proc/%d/status: empty %s", pid, k)
				}
				n, err := strconv.Atoi(f[0])
				if err != nil {
					t.Fatalf("/proc/%d/status: %s: %v", pid, k, err)
				}
				fields[k] = n
			}
		}
	}
	return fields
}

// nearCount reports whether got is within 5 % of want, or within slack of it
// for small counts.
func nearCount(got, want, slack int) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= slack || float64(d) <= 0.05*float64(want)
}
