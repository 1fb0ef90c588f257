package stack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// plainEcho is the simplest echo server: one goroutine reads a chunk and
// writes it back before reading again, so its reads wait for its writes.
func plainEcho(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return
		}
	}
}

// echoBulk sends total bytes through a plainEcho server on server's stack
// at addr, from client's stack, reading the echo concurrently. It fails if
// the echo makes no progress for stallAfter.
func echoBulk(t *testing.T, server, client *Stack, addr string, total int64) {
	t.Helper()
	fa, proto := fullAddr(netip.MustParseAddrPort(addr))
	l, err := gonet.ListenTCP(server.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("ListenTCP(%s) = %v", addr, err)
	}
	defer l.Close()
	srvDone := make(chan struct{})
	srvConn := make(chan net.Conn, 1)
	go func() {
		defer close(srvDone)
		c, err := l.Accept()
		if err != nil {
			return
		}
		srvConn <- c
		plainEcho(c)
	}()
	c, err := gonet.DialContextTCP(context.Background(), client.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("DialTCP(%s) = %v", addr, err)
	}
	var sent, got atomic.Int64
	wrDone := make(chan struct{})
	go func() {
		defer close(wrDone)
		buf := make([]byte, 256<<10)
		for sent.Load() < total {
			n, err := c.Write(buf[:min(int64(len(buf)), total-sent.Load())])
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
		c.CloseWrite()
	}()
	rdDone := make(chan error, 2)
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				rdDone <- err
				return
			}
		}
	}()
	// The stalls this looks for never end; 15 s only has to outlast a
	// slow moment of a loaded machine (CI saw a 5 s gap once, with -race
	// and a load average of 6 on 2 CPUs).
	const stallAfter = 15 * time.Second
	last, lastChange := int64(-1), time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case err := <-rdDone:
			if err != nil {
				t.Errorf("reading the echo: %v", err)
			}
			done = true
		case <-tick.C:
			if g := got.Load() + sent.Load(); g != last {
				last, lastChange = g, time.Now()
			} else if time.Since(lastChange) > stallAfter {
				t.Errorf("echo of %d bytes stalled for %v: sent %d, echoed %d", total, stallAfter, sent.Load(), got.Load())
				done = true
			}
		}
	}
	// Closing both ends ends every blocked Read and Write, stalled or not.
	c.Close()
	l.Close()
	select {
	case sc := <-srvConn:
		sc.Close()
	default:
	}
	<-wrDone
	<-srvDone
	if got.Load() != total && !t.Failed() {
		t.Errorf("echoed %d bytes, want %d", got.Load(), total)
	}
}

func TestEchoBulkLoopback(t *testing.T) {
	leakcheck.Check(t)
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	echoBulk(t, s, s, "127.0.0.1:7", 64<<20)
}

func TestEchoBulkPipe(t *testing.T) {
	leakcheck.Check(t)
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	s1, err := New(Config{NICs: []NICConfig{{Endpoint: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := New(Config{NICs: []NICConfig{{Endpoint: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	echoBulk(t, s1, s2, "10.0.0.1:7", 64<<20)
}
