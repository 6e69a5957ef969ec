// Package metrics exports the daemon's counters in the Prometheus text
// format. It keeps no state and registers nothing globally: every scrape
// asks a Source for a fresh status and snapshot and turns them into
// constant metrics, so a scrape costs the data path only the counter
// reads that api.Status already makes.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vxwire/vxwire/internal/api"
)

// Snapshot holds what the status API does not carry. The Source builds a
// new one for each scrape and the collector only reads it.
type Snapshot struct {
	// DNSQueries counts the DNS queries each network's resolver has
	// handled since start-up, by network name and then by result (the
	// names of api.DNSStats.Queries). Counts never go down.
	DNSQueries map[string]map[string]uint64
}

// Source is what the exporter reads on each scrape; the tunnel engine is
// one. Both methods are called from the HTTP server's goroutines, so they
// must be safe for concurrent use, and must return values the caller may
// keep: the collector neither modifies nor retains them past the scrape.
type Source interface {
	Status() api.Status
	Metrics() Snapshot
}

// Handler returns an HTTP handler serving src's metrics, plus the Go
// runtime's and the process's, from a registry of its own. A scrape that
// meets a bad metric (an invalid label value, a duplicate) still serves
// the others.
func Handler(src Source) http.Handler {
	return handlerFor(newCollector(src))
}

func handlerFor(c *collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
