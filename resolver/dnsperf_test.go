package resolver

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const perfNames = 1000

// TestDNSPerfComparison loads this server and dnsmasq, serving the same
// perfNames names on loopback, with dnsperf over UDP in turn, and logs
//
//	RESULT dns vxwire_qps=… dnsmasq_qps=… ratio=…
//
// It runs only with VXWIRE_DNSPERF=1 and needs dnsperf and dnsmasq
// (Debian packages dnsperf, dnsmasq-base).
func TestDNSPerfComparison(t *testing.T) {
	if os.Getenv("VXWIRE_DNSPERF") != "1" {
		t.Skip("set VXWIRE_DNSPERF=1 to run the dnsperf comparison")
	}
	for _, tool := range []string{"dnsperf", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	names := newFakeNames()
	var hosts, queries bytes.Buffer
	for i := range perfNames {
		name := "c" + strconv.Itoa(i)
		addr := netip.AddrFrom4([4]byte{10, 77, byte(i >> 8), byte(i)})
		names.add("net1", addr.String(), name)
		hosts.WriteString(addr.String() + " " + name + "\n")
	}
	for i := range perfNames {
		// The same mix for both: mostly A hits, some misses and NODATA.
		switch name := "c" + strconv.Itoa((i*7919)%perfNames); {
		case i%10 == 8:
			queries.WriteString("missing" + strconv.Itoa(i) + " A\n")
		case i%10 == 9:
			queries.WriteString(name + " AAAA\n")
		default:
			queries.WriteString(name + " A\n")
		}
	}
	hostsFile, queryFile := filepath.Join(dir, "hosts"), filepath.Join(dir, "queries.txt")
	for f, b := range map[string][]byte{hostsFile: hosts.Bytes(), queryFile: queries.Bytes()} {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(dir, 0o755) // dnsmasq reads the hosts file after dropping privileges

	cfg := testConfig()
	cfg.Subnet = netip.MustParsePrefix("10.77.0.0/16")
	ts := startServer(t, names, cfg)
	_, vxPort, _ := net.SplitHostPort(ts.addr)
	dmPort := startDnsmasq(t, hostsFile)

	vx := runDNSPerf(t, vxPort, queryFile)
	dm := runDNSPerf(t, dmPort, queryFile)
	st := ts.Stats()
	t.Logf("vxwire: %.0f q/s, %.3f ms avg; stats %+v", vx.qps, vx.latency*1e3, st)
	t.Logf("dnsmasq: %.0f q/s, %.3f ms avg", dm.qps, dm.latency*1e3)
	t.Logf("RESULT dns vxwire_qps=%.0f dnsmasq_qps=%.0f ratio=%.2f vxwire_lat_ms=%.3f dnsmasq_lat_ms=%.3f",
		vx.qps, dm.qps, vx.qps/dm.qps, vx.latency*1e3, dm.latency*1e3)
	if st.NoError == 0 || st.NXDomain == 0 || st.NoData == 0 {
		t.Errorf("the query mix did not reach the server: %+v", st)
	}
}

// startDnsmasq runs dnsmasq on a free loopback port until the test ends.
func startDnsmasq(t *testing.T, hostsFile string) string {
	t.Helper()
	pc, ln := listenLoopback(t)
	port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
	pc.Close()
	ln.Close()
	var stderr bytes.Buffer
	cmd := exec.Command("dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
		"--addn-hosts="+hostsFile, "--port="+port, "--listen-address=127.0.0.1",
		"--bind-interfaces", "--pid-file=", "--log-facility=-",
		// Parity with the resolver: bare names are never forwarded, so
		// misses are NXDOMAIN and AAAA of a known name is NODATA.
		"--domain-needed")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start dnsmasq: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // by its pid
		<-exited
	})
	ready := eventually(t, 5*time.Second, func() bool {
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		r, _, err := c.Exchange(newQuery("c1.", dns.TypeA), "127.0.0.1:"+port)
		return err == nil && len(r.Answer) == 1
	})
	if !ready {
		t.Fatalf("dnsmasq did not answer: %s", stderr.String())
	}
	return port
}

type perfResult struct {
	qps     float64
	latency float64 // seconds
}

var (
	qpsRe = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latRe = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
)

// runDNSPerf runs dnsperf over UDP against 127.0.0.1:port, bounded to 30 s.
func runDNSPerf(t *testing.T, port, queryFile string) perfResult {
	t.Helper()
	seconds := "10"
	if s := os.Getenv("VXWIRE_DNSPERF_SECONDS"); s != "" {
		seconds = s
	}
	limit, _ := strconv.Atoi(seconds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(limit+20)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "dnsperf", "-s", "127.0.0.1", "-p", port,
		"-d", queryFile, "-l", seconds, "-c", "4", "-T", "1").CombinedOutput()
	if err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out)
	}
	var r perfResult
	for re, v := range map[*regexp.Regexp]*float64{qpsRe: &r.qps, latRe: &r.latency} {
		m := re.FindSubmatch(out)
		if m == nil {
			t.Fatalf("cannot parse dnsperf output:\n%s", out)
		}
		*v, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if lost := regexp.MustCompile(`Queries lost:\s+(\d+)`).FindSubmatch(out); lost != nil && string(lost[1]) != "0" {
		t.Logf("port %s: %s queries lost", port, lost[1])
	}
	t.Logf("dnsperf port %s:\n%s", port, strings.TrimSpace(string(out)))
	return r
}
