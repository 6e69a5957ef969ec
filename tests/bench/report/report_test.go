package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `### kernel: T=5 s
BenchmarkSwitchBatch-2   	  123456	      9876 ns/op	  1200.5 MB/s	       0 B/op	       0 allocs/op
BenchmarkNoise-2 some log output
RAW mode=kernel metric=tcp1_gbps rep=1 value=12.1 daemon_cpu_pct=0
RESULT mode=kernel metric=tcp1_gbps value=12.1 daemon_cpu_pct=-
RESULT mode=vxwire metric=tcp1_gbps value=6.35 daemon_cpu_pct=97
RESULT mode=vxwire metric=ping_avg_ms value=0.466
RESULT mode=kernel metric=ping_avg_ms value=0.078
RESULT metric=dns_propagation_ms value=nan
RESULT mode=vxwire_enc metric=tcp1_gbps_vs_kvx_wg value=n/a
metric kernel vxwire vxwire/kernel
tcp1_gbps 12.1 6.35 0.52
`

func TestParse(t *testing.T) {
	lines, figs, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 8 {
		t.Errorf("%d lines, want the benchmark and the 7 RAW and RESULT lines", len(lines))
	}
	if b := lines[0]; b.Kind != "BENCH" || b.Fields["allocs/op"] != "0" || b.Fields["ns/op"] != "9876" || b.Fields["name"] != "BenchmarkSwitchBatch-2" {
		t.Errorf("benchmark line %+v", b)
	}
	if lines[1].Kind != "RAW" || lines[1].Fields["rep"] != "1" {
		t.Errorf("first RAW line %+v", lines[1])
	}
	// nan and n/a are kept as lines, not figures.
	want := []Figure{
		{Mode: "kernel", Metric: "tcp1_gbps", Value: 12.1}, {Mode: "vxwire", Metric: "tcp1_gbps", Value: 6.35},
		{Mode: "vxwire", Metric: "ping_avg_ms", Value: 0.466}, {Mode: "kernel", Metric: "ping_avg_ms", Value: 0.078},
	}
	if len(figs) != len(want) {
		t.Fatalf("figures %+v", figs)
	}
	for i, w := range want {
		if f := figs[i]; f.Mode != w.Mode || f.Metric != w.Metric || f.Value != w.Value {
			t.Errorf("figure %d = %+v, want %+v", i, f, w)
		}
	}
	gs := groups(figs)
	if len(gs) != 2 || gs[0].metric != "tcp1_gbps" || len(gs[1].figs) != 2 {
		t.Errorf("groups %+v, want tcp1_gbps and ping_avg_ms, nan and ratios left out", gs)
	}
}

func TestParseRejects(t *testing.T) {
	_, _, err := parse(strings.NewReader("x\nRESULT mode=vxwire garbage\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "garbage") {
		t.Fatalf("err = %v, want one naming line 2 and the bad field", err)
	}
	_, _, err = parse(strings.NewReader("RESULT " + strings.Repeat("a", maxLine+1)))
	if err == nil {
		t.Fatal("an endless line was accepted")
	}
}

func TestRunWritesJSONAndSVG(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var table bytes.Buffer
	if err := run(log, out, "/nonexistent/vxwire", &table); err != nil {
		t.Fatal(err)
	}
	var r Run
	b, err := os.ReadFile(filepath.Join(out, "RUN.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Lines) != 8 || r.Machine["cpus"] == "" || r.Versions["vxwire"] != "not found" {
		t.Errorf("RUN.json: %d lines, machine %v, versions %v", len(r.Lines), r.Machine, r.Versions)
	}
	svg, err := os.ReadFile(filepath.Join(out, "RUN.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Fatalf("RUN.svg is not well-formed XML: %v", err)
	}
	// 4 figures, and vxwire's tcp1 CPU per Gbit/s; the kernel's is n/a.
	if n := bytes.Count(svg, []byte("<rect")); n != 5 {
		t.Errorf("%d bars, want 5", n)
	}
	if !bytes.Contains(svg, []byte("daemon CPU % per Gbit/s")) || !bytes.Contains(svg, []byte("n/a (no daemon)")) {
		t.Errorf("RUN.svg has no daemon CPU per Gbit/s group with the kernel's n/a:\n%s", svg)
	}
	var tcp1 *Figure
	for i, f := range r.Figures {
		if f.Mode == "vxwire" && f.Metric == "tcp1_gbps" {
			tcp1 = &r.Figures[i]
		}
	}
	if tcp1 == nil || tcp1.CPUPerGbps == nil || math.Abs(*tcp1.CPUPerGbps-97/6.35) > 0.005 {
		t.Errorf("RUN.json vxwire tcp1_gbps = %+v, want daemon_cpu_pct_per_gbps 97/6.35", tcp1)
	}
	if !strings.Contains(table.String(), "15.3") || !strings.Contains(table.String(), "n/a (no daemon)") {
		t.Errorf("table:\n%s\nwant vxwire's 15.3 %%/(Gbit/s) and the kernel's n/a", &table)
	}
	if err := run(filepath.Join(dir, "missing"), out, "", io.Discard); err == nil {
		t.Error("a missing log was accepted")
	}
}

// TestCPUPerGbps checks the daemon CPU per Gbit/s of every kind of
// throughput row: measured (vxwire, wireguard-go), the kernel's (no
// daemon), a row without the field, a zero throughput, and that rows that
// are not throughput get none.
func TestCPUPerGbps(t *testing.T) {
	_, figs, err := parse(strings.NewReader(`RESULT mode=vxwire metric=tcp4_gbps value=5 daemon_cpu_pct=150
RESULT mode=wg_go metric=tcp1_gbps value=2.5 daemon_cpu_pct=100
RESULT mode=kernel metric=tcp4_gbps value=19 daemon_cpu_pct=-
RESULT mode=socat metric=pub_gbps value=3
RESULT mode=vxwire metric=tcp1_gbps value=0 daemon_cpu_pct=50
RESULT mode=vxwire metric=tcp1_gbps value=1 daemon_cpu_pct=nan
RESULT mode=vxwire metric=ping_avg_ms value=0.3 daemon_cpu_pct=10
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		per  float64 // -1: none
		note string
	}{{30, ""}, {40, ""}, {-1, noteNoDaemon}, {-1, noteNotMeasured}, {-1, noteNoThroughput}, {-1, noteNotMeasured}, {-1, ""}}
	if len(figs) != len(want) {
		t.Fatalf("%d figures, want %d", len(figs), len(want))
	}
	for i, w := range want {
		f := figs[i]
		got := -1.0
		if f.CPUPerGbps != nil {
			got = *f.CPUPerGbps
		}
		if got != w.per || f.CPUNote != w.note {
			t.Errorf("%s %s: CPU per Gbit/s %v note %q, want %v %q", f.Mode, f.Metric, got, f.CPUNote, w.per, w.note)
		}
	}
	var b bytes.Buffer
	if err := writeSVG(&b, "t", figs); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"tcp4_gbps: daemon CPU % per Gbit/s", "n/a (not measured)", ">30</text>", ">40</text>"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("chart lacks %q", s)
		}
	}
}

func TestLowerIsBetter(t *testing.T) {
	for metric, want := range map[string]bool{
		"ping_avg_ms": true, "rss_idle_mib": true, "dns_server_cpu_us": true, "tcp1_gbps": false, "dns_qps": false, "http_gbps": false,
	} {
		if got := lowerIsBetter(metric); got != want {
			t.Errorf("lowerIsBetter(%q) = %v, want %v", metric, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("RESULT mode= metric=x value=1e309\nRAW =\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, figs, err := parse(strings.NewReader(s))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := writeSVG(&b, s, figs); err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(b.Bytes(), new(struct{})); err != nil {
			t.Fatalf("chart of %q is not well-formed: %v", s, err)
		}
	})
}

// TestBenchScriptsWriteKeyValue reads the RESULT lines that the bench
// scripts echo and checks that each word is key=value once command
// substitutions are taken out, as parse requires: laptop.sh and
// publish.sh once wrote "RESULT socat gbit_s=…", which stopped make
// bench at this report after every figure had been measured.
func TestBenchScriptsWriteKeyValue(t *testing.T) {
	scripts, err := filepath.Glob("../*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no bench scripts beside the report: %v", err)
	}
	n := 0
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			_, rest, ok := strings.Cut(line, `echo "RESULT `)
			if !ok {
				continue
			}
			n++
			rest, _, _ = strings.Cut(withoutSubst(rest), `"`)
			for _, w := range strings.Fields(rest) {
				if k, _, ok := strings.Cut(w, "="); !ok || k == "" {
					t.Errorf("%s:%d: %q is not key=value in %s", filepath.Base(s), i+1, w, strings.TrimSpace(line))
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no RESULT line found in the bench scripts")
	}
}

// withoutSubst returns s without its $(…) command substitutions.
func withoutSubst(s string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$("):
			depth++
			i++
		case depth > 0 && s[i] == '(':
			depth++
		case depth > 0 && s[i] == ')':
			depth--
		case depth == 0:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
