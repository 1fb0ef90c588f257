// Command benchtun is the kernel-side half of tests/bench-tun.sh: it
// measures one figure against a server and prints it as a bare number, or
// serves the same services as `ustack serve` on kernel sockets, as the
// reference the script compares ustack with.
//
//	benchtun send   -addr HOST:9  -t 3s   bulk to discard, Gbit/s
//	benchtun recv   -addr HOST:19 -t 3s   bulk from chargen, Gbit/s
//	benchtun rr     -addr HOST:7  -t 2s   1-byte echo round trip, µs
//	benchtun conn   -addr HOST:13 -t 2s -c N
//	                connect, read daytime to EOF, close; connections/s
//	benchtun server -addr HOST            discard, chargen, echo, daytime
//
// Both sides of every measurement use the same client code; only the
// server differs (ustack's gVisor stack or the kernel's), so the ratios
// compare the stacks and the links, not two benchmark tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtun send|recv|rr|conn|server -addr ADDR [-t DURATION] [-c N]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("benchtun "+os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "", "server address (host:port; host only for server)")
	d := fs.Duration("t", 3*time.Second, "how long to measure")
	conc := fs.Int("c", 1, "concurrent clients (conn)")
	fs.Parse(os.Args[2:])
	var v float64
	var err error
	switch os.Args[1] {
	case "send":
		v, err = bulk(*addr, *d, true)
	case "recv":
		v, err = bulk(*addr, *d, false)
	case "rr":
		v, err = roundTrip(*addr, *d)
	case "conn":
		v, err = connRate(*addr, *d, *conc)
	case "server":
		err = serve(*addr)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtun:", err)
		os.Exit(1)
	}
	if os.Args[1] != "server" {
		fmt.Printf("%.3f\n", v)
	}
}

// bulk sends to discard (send) or reads from chargen (!send) for d and
// returns Gbit/s. Bytes still in the local send buffer at the end (a few
// MB against gigabytes) are counted as sent.
func bulk(addr string, d time.Duration, send bool) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	var n int64
	start := time.Now()
	deadline := start.Add(d)
	c.SetDeadline(deadline)
	for {
		var m int
		if send {
			m, err = c.Write(buf)
		} else {
			m, err = c.Read(buf)
		}
		n += int64(m)
		if err != nil {
			break
		}
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	return float64(n) * 8 / time.Since(start).Seconds() / 1e9, nil
}

// roundTrip sends 1 byte to echo and waits for it, for d, and returns the
// mean round trip in µs.
func roundTrip(addr string, d time.Duration) (float64, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 5*time.Second))
	b := []byte{'x'}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		n++
	}
	return float64(time.Since(start).Microseconds()) / float64(n), nil
}

// connRate runs conc clients that each connect, read to EOF and close, for
// d, and returns connections per second.
func connRate(addr string, d time.Duration, conc int) (float64, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for time.Since(start) < d {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				for err == nil {
					_, err = c.Read(buf)
				}
				c.Close()
				if err != io.EOF {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// serve runs discard (9), chargen (19), echo (7) and daytime (13) on
// kernel sockets at host until SIGTERM or SIGINT, with the buffer sizes
// ustack's services use.
func serve(host string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	handlers := map[int]func(net.Conn){
		9: func(c net.Conn) {
			buf := make([]byte, 256<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		},
		19: func(c net.Conn) {
			go io.Copy(io.Discard, c)
			buf := make([]byte, 149*7030) // whole chargen cycles, ~1 MiB, as ustack writes
			for i := range buf {
				buf[i] = byte(' ' + i%95)
			}
			for {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		},
		7: func(c net.Conn) {
			io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 256<<10))
		},
		13: func(c net.Conn) {
			c.Write([]byte(time.Now().Format("Monday, January 2, 2006 15:04:05-MST") + "\r\n"))
		},
	}
	var ls []net.Listener
	for port, h := range handlers {
		l, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			return err
		}
		ls = append(ls, l)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); h(c) }()
			}
		}()
	}
	fmt.Println("ready")
	<-ctx.Done()
	for _, l := range ls {
		l.Close()
	}
	return nil
}
