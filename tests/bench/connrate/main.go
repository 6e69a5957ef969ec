// Command connrate measures TCP connection rate for tests/bench/publish.sh.
//
//	connrate serve ADDR        accept; per connection read 1 byte, answer 1, close
//	connrate dial ADDR N C     N connections, C at a time; each connects,
//	                           sends 1 byte, reads the answer and closes
//
// dial prints "CONNS_PER_SEC FAILED".
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: connrate serve ADDR | connrate dial ADDR N C")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "dial":
		n, _ := strconv.Atoi(os.Args[3])
		c, _ := strconv.Atoi(os.Args[4])
		dial(os.Args[2], n, c)
	default:
		os.Exit(2)
	}
}

func serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go func() {
			defer c.Close()
			var b [1]byte
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(b[:]); err == nil {
				c.Write(b[:])
			}
		}()
	}
}

func dial(addr string, n, conc int) {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			for next.Add(1) <= int64(n) {
				c, err := net.DialTimeout("tcp", addr, 3*time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Write([]byte{'x'}); err != nil {
					failed.Add(1)
				} else if _, err := c.Read(b[:]); err != nil {
					failed.Add(1)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%.0f %d\n", float64(n)/time.Since(start).Seconds(), failed.Load())
}
