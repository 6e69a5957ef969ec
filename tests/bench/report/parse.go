package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Line is one RAW or RESULT line of bench.sh, with its key=value fields, or
// one Go benchmark result (kind BENCH: name, iterations and each unit's
// value, such as ns/op and allocs/op).
type Line struct {
	Kind   string            `json:"kind"`
	Fields map[string]string `json:"fields"`
}

// Figure is a RESULT line with a numeric value: one bar of the chart.
type Figure struct {
	Mode   string  `json:"mode"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	// CPUPerGbps is, for a throughput figure (a metric in Gbit/s, _gbps),
	// the % of one core its daemons used per Gbit/s carried: the RESULT
	// line's daemon_cpu_pct divided by its value. The vxwire daemons for
	// vxwire's rows, the wireguard-go processes for theirs. Nil when it
	// cannot be given; CPUNote then says why.
	CPUPerGbps *float64 `json:"daemon_cpu_pct_per_gbps,omitempty"`
	// CPUNote is set on a throughput figure without CPUPerGbps: "no
	// daemon" (the kernel's rows, daemon_cpu_pct=-), "not measured" (no
	// daemon_cpu_pct on the line) or "no throughput" (a value of 0).
	CPUNote string `json:"daemon_cpu_note,omitempty"`
}

// Reasons a throughput figure has no CPUPerGbps.
const (
	noteNoDaemon     = "no daemon"
	noteNotMeasured  = "not measured"
	noteNoThroughput = "no throughput"
)

// throughput reports whether metric is a throughput in Gbit/s.
func throughput(metric string) bool { return strings.HasSuffix(metric, "_gbps") }

// withCPU sets f's CPUPerGbps or CPUNote from daemon_cpu_pct, as fields
// holds it, when f is a throughput figure.
func withCPU(f Figure, fields map[string]string) Figure {
	if !throughput(f.Metric) {
		return f
	}
	s, ok := fields["daemon_cpu_pct"]
	if s == "-" {
		f.CPUNote = noteNoDaemon
		return f
	}
	pct, err := strconv.ParseFloat(s, 64)
	switch {
	case !ok || err != nil || math.IsNaN(pct) || math.IsInf(pct, 0) || pct < 0:
		f.CPUNote = noteNotMeasured
	case f.Value <= 0:
		f.CPUNote = noteNoThroughput
	default:
		v := math.Round(pct/f.Value*100) / 100 // the CPU figure has no more digits
		f.CPUPerGbps = &v
	}
	return f
}

// maxLine bounds one line of the log; longer lines are an error, not a
// reason to grow without limit.
const maxLine = 64 << 10

// parse reads bench.sh output and returns its RAW and RESULT lines, and the
// RESULT lines whose value is a number as figures. Other lines are ignored;
// a RAW or RESULT line with a field that is not key=value is an error that
// names its line number.
func parse(r io.Reader) (lines []Line, figs []Figure, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	for n := 1; sc.Scan(); n++ {
		words := strings.Fields(sc.Text())
		if len(words) > 0 && strings.HasPrefix(words[0], "Benchmark") {
			if l, ok := benchLine(words); ok {
				lines = append(lines, l)
			}
			continue
		}
		if len(words) == 0 || (words[0] != "RAW" && words[0] != "RESULT") {
			continue
		}
		l := Line{Kind: words[0], Fields: make(map[string]string, len(words)-1)}
		for _, w := range words[1:] {
			k, v, ok := strings.Cut(w, "=")
			if !ok || k == "" {
				return nil, nil, fmt.Errorf("line %d: %q is not key=value", n, w)
			}
			l.Fields[k] = v
		}
		lines = append(lines, l)
		if l.Kind != "RESULT" {
			continue
		}
		v, err := strconv.ParseFloat(l.Fields["value"], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || l.Fields["metric"] == "" {
			continue // "n/a", "nan" and the like are kept as lines only
		}
		mode := l.Fields["mode"]
		if mode == "" {
			mode = "vxwire"
		}
		figs = append(figs, withCPU(Figure{Mode: mode, Metric: l.Fields["metric"], Value: v}, l.Fields))
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading the log: %w", err)
	}
	return lines, figs, nil
}

// benchLine reads a Go benchmark result: the name, the iteration count,
// then value-unit pairs. Lines that do not have that shape (a benchmark's
// log output) are not results.
func benchLine(words []string) (Line, bool) {
	if len(words) < 4 || len(words)%2 != 0 {
		return Line{}, false
	}
	if _, err := strconv.ParseUint(words[1], 10, 64); err != nil {
		return Line{}, false
	}
	l := Line{Kind: "BENCH", Fields: map[string]string{"name": words[0], "iterations": words[1]}}
	for i := 2; i+1 < len(words); i += 2 {
		if _, err := strconv.ParseFloat(words[i], 64); err != nil {
			return Line{}, false
		}
		l.Fields[words[i+1]] = words[i]
	}
	return l, true
}
