package tunnel

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"

	"github.com/vxwire/vxwire/internal/api"
)

// processStats reads the daemon's goroutine count, live Go heap, open
// descriptors (/proc/self/fd) and resident set (/proc/self/statm); what
// cannot be read stays zero.
func processStats() api.ProcessStats {
	ps := api.ProcessStats{Goroutines: runtime.NumGoroutine()}
	heap := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(heap)
	if heap[0].Value.Kind() == metrics.KindUint64 {
		ps.HeapBytes = heap[0].Value.Uint64()
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		ps.FDs = len(fds) - 1 // the descriptor ReadDir itself had open
	}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		// size resident shared text lib data dt, in pages
		if f := bytes.Fields(b); len(f) > 1 {
			if pages, err := strconv.ParseUint(string(f[1]), 10, 64); err == nil {
				ps.RSSBytes = pages * uint64(os.Getpagesize())
			}
		}
	}
	return ps
}
