package main

import (
	"fmt"
	"html"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// group is the figures of one metric, drawn as one row of bars scaled to
// the largest of them. A cpu group draws its throughput figures'
// CPUPerGbps instead of their values.
type group struct {
	metric string
	figs   []Figure
	cpu    bool
}

// title is the group's heading in the chart.
func (g group) title() string {
	if g.cpu {
		return g.metric + ": daemon CPU % per Gbit/s (lower is better)"
	}
	if lowerIsBetter(g.metric) {
		return g.metric + " (lower is better)"
	}
	return g.metric + " (higher is better)"
}

// bar returns what f's bar shows in g, or ok false and the note that
// replaces the bar.
func (g group) bar(f Figure) (v float64, note string, ok bool) {
	if !g.cpu {
		return f.Value, "", true
	}
	if f.CPUPerGbps == nil {
		return 0, "n/a (" + f.CPUNote + ")", false
	}
	return *f.CPUPerGbps, "", true
}

// cpuGroups returns, for each throughput group of gs, a cpu group of the
// same figures.
func cpuGroups(gs []group) []group {
	var out []group
	for _, g := range gs {
		if throughput(g.metric) {
			out = append(out, group{metric: g.metric, figs: g.figs, cpu: true})
		}
	}
	return out
}

// groups orders figures by metric, in the order metrics first appear, and
// drops ratio rows (metrics ending in _vs_...), which are not measurements.
func groups(figs []Figure) []group {
	var out []group
	for _, f := range figs {
		if strings.Contains(f.Metric, "_vs_") {
			continue
		}
		i := slices.IndexFunc(out, func(g group) bool { return g.metric == f.Metric })
		if i < 0 {
			out = append(out, group{metric: f.Metric})
			i = len(out) - 1
		}
		out[i].figs = append(out[i].figs, f)
	}
	return out
}

// lowerIsBetter says which way a metric reads, from its unit suffix:
// latencies (_ms), CPU time per unit of work (_us) and memory (_mib).
func lowerIsBetter(metric string) bool {
	return strings.HasSuffix(metric, "_ms") || strings.HasSuffix(metric, "_us") || strings.HasSuffix(metric, "_mib")
}

// writeSVG draws one horizontal bar per figure, grouped by metric; each
// bar's length is its share of the largest value in its group.
func writeSVG(w io.Writer, title string, figs []Figure) error {
	const (
		width, labelW, barH, gap, top = 860, 250, 18, 4, 40
	)
	gs := groups(figs)
	gs = append(gs, cpuGroups(gs)...)
	rows := 0
	for _, g := range gs {
		rows += len(g.figs) + 1
	}
	height := top + rows*(barH+gap) + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15">%s</text>`+"\n", text(title))
	y := top
	for _, g := range gs {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+barH-5, text(g.title()))
		y += barH + gap
		largest := 0.0
		for _, f := range g.figs {
			if v, _, ok := g.bar(f); ok {
				largest = max(largest, v)
			}
		}
		for _, f := range g.figs {
			v, note, ok := g.bar(f)
			if !ok {
				fmt.Fprintf(&b, `<text x="20" y="%d">%s</text><text x="%d" y="%d" fill="#8a8a8a">%s</text>`+"\n",
					y+barH-5, text(f.Mode), labelW, y+barH-5, text(note))
				y += barH + gap
				continue
			}
			w := 0.0
			if largest > 0 {
				w = v / largest * float64(width-labelW-90)
			}
			color := "#8a8a8a"
			if strings.HasPrefix(f.Mode, "vxwire") {
				color = "#2b6cb0"
			}
			fmt.Fprintf(&b, `<text x="20" y="%d">%s</text>`, y+barH-5, text(f.Mode))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelW, y, max(w, 0), barH, color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(labelW)+max(w, 0)+6, y+barH-5, formatValue(v))
			y += barH + gap
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// formatValue prints a figure with three significant digits.
func formatValue(v float64) string {
	return fmt.Sprintf("%.3g", v)
}

// text escapes s for SVG text and drops what XML cannot carry (control
// characters and invalid UTF-8), so any label gives a well-formed chart.
func text(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || (r < 0x20 && r != '\t') || r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, s)
	return html.EscapeString(clean)
}
