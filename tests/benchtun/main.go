// Command benchtun is the benchmark client of tests/bench-tun.sh and
// tests/bench-run.sh: it measures one figure against a server and prints
// it as bare numbers, or serves the services it measures on kernel
// sockets.
//
//	benchtun send   -addr HOST:9  -t 3s   bulk to discard, Gbit/s
//	benchtun recv   -addr HOST:19 -t 3s   bulk from chargen, Gbit/s
//	benchtun rr     -addr HOST:7  -t 2s [-p99]
//	                1-byte echo round trip, mean µs (and the 99th percentile)
//	benchtun conn   -addr HOST:13 -t 2s -c N [-noread]
//	                connect, read daytime to EOF, close; connections/s
//	                (-noread: connect and close, for a server that never
//	                closes first, such as echo)
//	benchtun server -addr HOST            discard, chargen, echo, daytime
//	benchtun echo   -addr HOST:PORT       echo alone, on any port
//
// In bench-tun.sh the server is ustack serve or benchtun server behind a
// veth pair; in bench-run.sh it is benchtun echo on the host, reached
// through each user-mode network stack. Either way the same client code
// measures every stack, so the ratios compare the stacks and the links,
// not two benchmark tools.
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
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtun send|recv|rr|conn|server|echo -addr ADDR [-t DURATION] [-c N] [-noread] [-p99]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("benchtun "+os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "", "server address (host:port; host only for server)")
	d := fs.Duration("t", 3*time.Second, "how long to measure")
	conc := fs.Int("c", 1, "concurrent clients (conn)")
	noRead := fs.Bool("noread", false, "conn: close without reading to EOF")
	p99 := fs.Bool("p99", false, "rr: print the 99th percentile after the mean")
	fs.Parse(os.Args[2:])
	var v []float64
	var err error
	switch os.Args[1] {
	case "send", "recv":
		var g float64
		g, err = bulk(*addr, *d, os.Args[1] == "send")
		v = []float64{g}
	case "rr":
		var mean, pct float64
		mean, pct, err = roundTrip(*addr, *d)
		v = []float64{mean}
		if *p99 {
			v = append(v, pct)
		}
	case "conn":
		var r float64
		r, err = connRate(*addr, *d, *conc, !*noRead)
		v = []float64{r}
	case "server":
		err = serve(*addr)
	case "echo":
		err = serveEcho(*addr)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtun:", err)
		os.Exit(1)
	}
	for i, x := range v {
		if i > 0 {
			fmt.Print(" ")
		}
		fmt.Printf("%.3f", x)
	}
	if len(v) > 0 {
		fmt.Println()
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
// mean round trip and its 99th percentile, in µs.
func roundTrip(addr string, d time.Duration) (mean, p99 float64, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d + 5*time.Second))
	b := []byte{'x'}
	var lat []time.Duration
	start := time.Now()
	for t0 := start; t0.Sub(start) < d; {
		if _, err := c.Write(b); err != nil {
			return 0, 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, 0, err
		}
		t1 := time.Now()
		lat = append(lat, t1.Sub(t0))
		t0 = t1
	}
	total := time.Since(start)
	slices.Sort(lat)
	us := func(t time.Duration) float64 { return float64(t.Nanoseconds()) / 1e3 }
	return us(total) / float64(len(lat)), us(lat[len(lat)*99/100]), nil
}

// connRate runs conc clients that each connect, read to EOF (if read)
// and close, for d, and returns connections per second. A failed
// connection is counted and the client goes on; more failures than
// successes fail the figure.
func connRate(addr string, d time.Duration, conc int, read bool) (float64, error) {
	var n, fails atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for time.Since(start) < d {
				if err := connOnce(addr, buf, read); err != nil {
					fails.Add(1)
					lastErr.Store(err)
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	rate := float64(n.Load()) / time.Since(start).Seconds()
	if f := fails.Load(); f > 0 {
		err := fmt.Errorf("%d of %d connections failed, the last: %v", f, f+n.Load(), lastErr.Load())
		if f > n.Load() {
			return 0, err
		}
		fmt.Fprintln(os.Stderr, "benchtun:", err)
	}
	return rate, nil
}

// connOnce connects to addr, reads to EOF into buf if read, and closes.
func connOnce(addr string, buf []byte, read bool) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if !read {
		return nil
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := c.Read(buf); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// serve runs discard (9), chargen (19), echo (7) and daytime (13) on
// kernel sockets at host until SIGTERM or SIGINT, with the buffer sizes
// ustack's services use.
func serve(host string) error {
	at := func(port string) string { return net.JoinHostPort(host, port) }
	return listen(map[string]func(net.Conn){
		at("9"):  discard,
		at("19"): chargen,
		at("7"):  echo,
		at("13"): daytime,
	})
}

// serveEcho runs echo alone at addr until SIGTERM or SIGINT.
func serveEcho(addr string) error {
	return listen(map[string]func(net.Conn){addr: echo})
}

func discard(c net.Conn) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

func chargen(c net.Conn) {
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
}

func echo(c net.Conn) {
	io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 256<<10))
}

func daytime(c net.Conn) {
	c.Write([]byte(time.Now().Format("Monday, January 2, 2006 15:04:05-MST") + "\r\n"))
}

// listen serves each address with its handler, a goroutine per
// connection, prints "ready" once all listen, and returns on SIGTERM or
// SIGINT.
func listen(handlers map[string]func(net.Conn)) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for addr, h := range handlers {
		l, err := net.Listen("tcp", addr)
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
	return nil
}
