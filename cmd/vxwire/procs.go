package main

import (
	"log/slog"
	"os"
	"runtime"
)

// daemonProcs returns the GOMAXPROCS the daemon runs with, and where it
// comes from: the config's host.procs when set, else the GOMAXPROCS
// environment variable (env, already applied by the runtime, which then
// reports it as current), else half of current, the runtime's default
// (the CPUs the process may use), and at least one.
//
// Half, because the daemon forwards for containers on the same host: the
// endpoints and the kernel's work for their frames (TCP, the TAP and the
// underlay socket) need CPU as well. And with an idle P the runtime wakes
// a second thread at every wake-up of a reader, which only costs on a
// host whose CPUs are all busy: on the 2-core benchmark machine one P
// moved one TCP stream 13-20 % faster with less CPU, and the encrypted
// path faster too (docs/performance.md, "Threads for Go code").
func daemonProcs(cfgProcs int, env string, current int) (int, string) {
	switch {
	case cfgProcs > 0:
		return cfgProcs, "host.procs"
	case env != "":
		return current, "GOMAXPROCS"
	default:
		return max(1, current/2), "half of the CPUs"
	}
}

// setProcs applies daemonProcs to the running process and logs it. The
// number is taken once, at start-up: once set here, the runtime no longer
// follows a later change of the cgroup's CPU limit, as it does for its
// own default. A value equal to the current one is left alone, so that
// following stays on where nothing is changed.
func setProcs(cfgProcs int, l *slog.Logger) {
	current := runtime.GOMAXPROCS(0)
	n, from := daemonProcs(cfgProcs, os.Getenv("GOMAXPROCS"), current)
	if n != current {
		runtime.GOMAXPROCS(n)
	}
	l.Info("threads for Go code", "procs", n, "from", from, "cpus", runtime.NumCPU())
}
