// Command hostswatch watches many vxwire daemons through their API sockets
// for tests/bench/hosts.sh.
//
//	hostswatch wait [-timeout D] -want N SOCK...
//	    poll every daemon until each lists at least N endpoints across the
//	    cluster (GET /v1/endpoints?all=1); prints the milliseconds taken,
//	    and names the last daemon to get there on stderr.
//	hostswatch attach [-timeout D] [-every D] -network NET -name NAME -netns PATH SOCK WATCH...
//	    poll the daemons at WATCH every D, attach NAME to NET on the daemon
//	    at SOCK, and print "attach_ms MS ADDRESS", then "seen_ms I MS" for
//	    each WATCH socket I (from 1): how long after the attach returned
//	    that daemon first listed NAME (0 when it did before).
//
// Both exit 1, naming the daemons that did not get there, at the timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vxwire/vxwire/internal/api"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "wait":
		err = wait(os.Args[2:])
	case "attach":
		err = attach(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostswatch:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hostswatch wait -want N SOCK... | hostswatch attach -network NET -name NAME -netns PATH SOCK WATCH...")
	os.Exit(2)
}

// poll calls check on the daemon at sock every interval until it returns
// true or ctx ends, and returns when check first held (zero if never).
func poll(ctx context.Context, sock string, every time.Duration, check func([]api.Endpoint) bool) time.Time {
	c := api.NewClient(sock)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		es, err := c.AllEndpoints(rctx)
		cancel()
		if err == nil && check(es) {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Time{}
		case <-t.C:
		}
	}
}

// pollAll polls every socket at once and returns when each first passed.
func pollAll(ctx context.Context, socks []string, every time.Duration, check func([]api.Endpoint) bool) []time.Time {
	seen := make([]time.Time, len(socks))
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen[i] = poll(ctx, s, every, check)
		}()
	}
	wg.Wait()
	return seen
}

// missing names the sockets whose time is zero.
func missing(socks []string, seen []time.Time) error {
	var bad []string
	for i, t := range seen {
		if t.IsZero() {
			bad = append(bad, socks[i])
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d daemons never got there: %s", len(bad), len(socks), strings.Join(bad, " "))
}

func wait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	want := fs.Int("want", 1, "endpoints every daemon must list")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after")
	every := fs.Duration("every", 500*time.Millisecond, "poll interval per daemon")
	_ = fs.Parse(args)
	socks := fs.Args()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	t0 := time.Now()
	seen := pollAll(ctx, socks, *every, func(es []api.Endpoint) bool { return len(es) >= *want })
	if err := missing(socks, seen); err != nil {
		return err
	}
	fmt.Println(time.Since(t0).Milliseconds())
	last := 0
	for i, t := range seen {
		if t.After(seen[last]) {
			last = i
		}
	}
	fmt.Fprintf(os.Stderr, "hostswatch: the last to list %d endpoints: %s, after %d ms\n", *want, socks[last], seen[last].Sub(t0).Milliseconds())
	return nil
}

func attach(args []string) error {
	fs := flag.NewFlagSet("attach", flag.ExitOnError)
	network := fs.String("network", "", "network to attach to")
	name := fs.String("name", "", "endpoint name")
	netns := fs.String("netns", "", "path of the container's namespace")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after")
	every := fs.Duration("every", 50*time.Millisecond, "poll interval per watched daemon")
	_ = fs.Parse(args)
	if fs.NArg() < 2 || *network == "" || *name == "" || *netns == "" {
		usage()
	}
	sock, watch := fs.Arg(0), fs.Args()[1:]
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var seen []time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen = pollAll(ctx, watch, *every, func(es []api.Endpoint) bool {
			for _, e := range es {
				if e.Network == *network && e.Name == *name {
					return true
				}
			}
			return false
		})
	}()
	t0 := time.Now()
	ep, err := api.NewClient(sock).Attach(ctx, api.AttachRequest{Network: *network, Name: *name, NetNS: *netns})
	if err != nil {
		cancel()
		<-done
		return fmt.Errorf("attach %s: %w", *name, err)
	}
	t1 := time.Now()
	addr := ep.Address
	if p, err := netip.ParsePrefix(addr); err == nil {
		addr = p.Addr().String()
	}
	fmt.Printf("attach_ms %d %s\n", t1.Sub(t0).Milliseconds(), addr)
	<-done
	if err := missing(watch, seen); err != nil {
		return err
	}
	for i, t := range seen {
		fmt.Printf("seen_ms %d %d\n", i+1, max(t.Sub(t1), 0).Milliseconds())
	}
	return nil
}
