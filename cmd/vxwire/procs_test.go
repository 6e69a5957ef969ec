package main

import "testing"

func TestDaemonProcs(t *testing.T) {
	for _, c := range []struct {
		cfg     int
		env     string
		current int
		want    int
		from    string
	}{
		{0, "", 2, 1, "half of the CPUs"},
		{0, "", 1, 1, "half of the CPUs"},
		{0, "", 3, 1, "half of the CPUs"},
		{0, "", 16, 8, "half of the CPUs"},
		{0, "4", 4, 4, "GOMAXPROCS"}, // the runtime applied the variable
		{3, "4", 4, 3, "host.procs"}, // the file wins
		{2, "", 16, 2, "host.procs"},
	} {
		n, from := daemonProcs(c.cfg, c.env, c.current)
		if n != c.want || from != c.from {
			t.Errorf("daemonProcs(%d, %q, %d) = %d, %q; want %d, %q", c.cfg, c.env, c.current, n, from, c.want, c.from)
		}
	}
}
