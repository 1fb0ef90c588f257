// Command runbench measures TCP connection rate and 1-byte
// request/response latency for tests/bench-run.sh, which runs its server
// on the host and its client inside each namespace under test.
//
//	runbench server ADDR         accept; answer each byte with one byte
//	runbench connrate ADDR DUR   connections per second (4 workers, connect+close)
//	runbench rr ADDR DUR         1-byte round trips on one connection: mean and p99 µs
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: runbench server ADDR | connrate ADDR DUR | rr ADDR DUR")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2])
	case "connrate", "rr":
		if len(os.Args) != 4 {
			err = fmt.Errorf("%s needs ADDR and DUR", os.Args[1])
			break
		}
		var d time.Duration
		if d, err = time.ParseDuration(os.Args[3]); err != nil {
			break
		}
		if os.Args[1] == "connrate" {
			err = connrate(os.Args[2], d)
		} else {
			err = rr(os.Args[2], d)
		}
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runbench:", err)
		os.Exit(1)
	}
}

func server(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			c.(*net.TCPConn).SetNoDelay(true)
			b := make([]byte, 1)
			for {
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				if _, err := c.Write(b); err != nil {
					return
				}
			}
		}()
	}
}

// connrate prints connections per second: each worker connects, closes
// and repeats until d has passed.
func connrate(addr string, d time.Duration) error {
	var n, fails atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					fails.Add(1)
					continue
				}
				c.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if fails.Load() > n.Load() {
		return fmt.Errorf("%d of %d connections failed", fails.Load(), n.Load()+fails.Load())
	}
	fmt.Printf("%.0f\n", float64(n.Load())/d.Seconds())
	return nil
}

// rr prints the mean and 99th percentile of 1-byte round trips in µs.
func rr(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	var lat []time.Duration
	b := []byte{1}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		t0 := time.Now()
		if _, err := c.Write(b); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var sum time.Duration
	for _, l := range lat {
		sum += l
	}
	mean := sum / time.Duration(len(lat))
	fmt.Printf("%.1f %.1f\n", float64(mean.Nanoseconds())/1e3, float64(lat[len(lat)*99/100].Nanoseconds())/1e3)
	return nil
}
