// Command report turns the output of bench.sh into bench-results/RUN.json
// (every RAW and RESULT figure, machine information and versions) and
// RUN.svg (a bar chart of every figure beside its reference, from the same
// run).
//
// Every throughput figure (Gbit/s) also gets the daemon CPU it cost, in %
// of one core per Gbit/s (Figure.CPUPerGbps), drawn in the chart and
// printed as a table on stdout.
//
// Usage: report -log FILE -out DIR [-vxwire BIN]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Run is the content of RUN.json.
type Run struct {
	Date     string            `json:"date"`
	Machine  map[string]string `json:"machine"`
	Versions map[string]string `json:"versions"`
	Env      map[string]string `json:"env"`
	Lines    []Line            `json:"lines"`
	Figures  []Figure          `json:"figures"`
}

func main() {
	logPath := flag.String("log", "", "bench.sh output (stdout and stderr)")
	out := flag.String("out", "bench-results", "directory for RUN.json and RUN.svg")
	bin := flag.String("vxwire", "bin/vxwire", "vxwire binary whose version is recorded")
	flag.Parse()
	if err := run(*logPath, *out, *bin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

// run writes RUN.json and RUN.svg into out from the log at logPath, and
// the table of throughput and daemon CPU to table.
func run(logPath, out, bin string, table io.Writer) error {
	if logPath == "" {
		return fmt.Errorf("-log is required")
	}
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	lines, figs, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", logPath, err)
	}
	if len(figs) == 0 {
		return fmt.Errorf("%s: no RESULT figures", logPath)
	}
	r := Run{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Machine:  machine(),
		Versions: versions(bin),
		Env:      env(),
		Lines:    lines,
		Figures:  figs,
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "RUN.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	svg, err := os.Create(filepath.Join(out, "RUN.svg"))
	if err != nil {
		return err
	}
	if err := writeSVG(svg, "vxwire bench "+r.Date+" ("+r.Machine["cpus"]+" CPUs, "+r.Machine["kernel"]+")", figs); err != nil {
		svg.Close()
		return err
	}
	if err := svg.Close(); err != nil {
		return err
	}
	return writeCPUTable(table, figs)
}

// writeCPUTable prints each throughput figure with its daemon CPU per
// Gbit/s, or why there is none; nothing when the run has no throughput.
func writeCPUTable(w io.Writer, figs []Figure) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	n := 0
	for _, f := range figs {
		if !throughput(f.Metric) {
			continue
		}
		if n == 0 {
			fmt.Fprintln(tw, "metric\tmode\tGbit/s\tdaemon CPU %/(Gbit/s)")
		}
		n++
		cpu := "n/a (" + f.CPUNote + ")"
		if f.CPUPerGbps != nil {
			cpu = fmt.Sprintf("%.1f", *f.CPUPerGbps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Metric, f.Mode, formatValue(f.Value), cpu)
	}
	return tw.Flush()
}

// machine records what the figures depend on: CPU model and count, memory
// and kernel.
func machine() map[string]string {
	m := map[string]string{
		"cpus":   fmt.Sprint(runtime.NumCPU()),
		"arch":   runtime.GOARCH,
		"kernel": firstLine("uname", "-r"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(l, "MemTotal:") {
			m["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(l, "MemTotal:")), " ")
		}
	}
	return m
}

// versions records the binaries whose figures are compared.
func versions(bin string) map[string]string {
	return map[string]string{
		"go":           runtime.Version(),
		"vxwire":       firstLine(bin, "version"),
		"iperf3":       firstLine("iperf3", "--version"),
		"wireguard-go": firstLine("wireguard-go", "--version"),
		"dnsmasq":      firstLine("dnsmasq", "--version"),
		"dnsperf":      firstLine("dnsperf", "-h"),
	}
}

// env records the bench settings that change what a figure means.
func env() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"T", "REPS", "PN", "DNS", "DNST", "ENC", "WG_GO"} {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	return m
}

// firstLine runs a command briefly and returns the first line it printed,
// or "not found". It gets five seconds.
func firstLine(name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	b, _ := cmd.CombinedOutput()
	l, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if l == "" {
		return "not found"
	}
	return l
}
