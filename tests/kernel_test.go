package tests

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
)

// The addresses `ustack serve` gives each side by default; the in-process
// tests use them too.
var (
	hostV4  = netip.MustParsePrefix("10.99.0.1/24")
	hostV6  = netip.MustParsePrefix("fd00:99::1/64")
	stackV4 = netip.MustParsePrefix("10.99.0.2/24")
	stackV6 = netip.MustParsePrefix("fd00:99::2/64")
)

// dialIn connects to addr with the kernel's TCP (or UDP) inside ns. The
// socket stays in ns after the thread that made it is gone.
func dialIn(t testing.TB, ns *roottest.NS, network string, addr netip.AddrPort) net.Conn {
	t.Helper()
	c, err := tryDialIn(ns, network, addr)
	if err != nil {
		t.Fatalf("dial %s %v in %s: %v", network, addr, ns.Name, err)
	}
	return c
}

func tryDialIn(ns *roottest.NS, network string, addr netip.AddrPort) (c net.Conn, err error) {
	err = netns.Do(ns.Path, func() error {
		c, err = net.DialTimeout(network, addr.String(), 10*time.Second)
		return err
	})
	return c, err
}

// listenIn listens on addr with the kernel's TCP inside ns.
func listenIn(t testing.TB, ns *roottest.NS, addr netip.AddrPort) net.Listener {
	t.Helper()
	var l net.Listener
	err := netns.Do(ns.Path, func() (err error) {
		l, err = net.Listen("tcp", addr.String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %v in %s: %v", addr, ns.Name, err)
	}
	return l
}

// pseudoRandom returns a reader of n reproducible pseudo-random bytes.
func pseudoRandom(n int64, seed uint64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// checkEcho sends n pseudo-random bytes on c, half-closes, reads the echo
// to EOF and fails t unless the SHA-256 of what came back equals that of
// what was sent. It closes c.
func checkEcho(t testing.TB, c net.Conn, n int64, timeout time.Duration) {
	t.Helper()
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(c, io.TeeReader(pseudoRandom(n, uint64(n)), sent), make([]byte, 256<<10))
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	got := sha256.New()
	m, rerr := io.CopyBuffer(got, c, make([]byte, 256<<10))
	if err := <-werr; err != nil {
		t.Fatalf("echo via %v: write: %v", c.RemoteAddr(), err)
	}
	if rerr != nil || m != n {
		t.Fatalf("echo via %v: read %d bytes, %v; want %d bytes and EOF", c.RemoteAddr(), m, rerr, n)
	}
	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatalf("echo via %v: SHA-256 of %d bytes back = %x, sent %x", c.RemoteAddr(), n, got.Sum(nil), sent.Sum(nil))
	}
}

// checkUDPEcho sends datagrams of each size on c and expects each back
// unchanged. UDP may drop, so each is tried a few times.
func checkUDPEcho(t testing.TB, c net.Conn, sizes ...int) {
	t.Helper()
	buf := make([]byte, 65536)
	for _, size := range sizes {
		want := bytes.Repeat([]byte{byte(size), byte(size >> 8), 'u'}, size/3+1)[:size]
		ok := false
		for try := 0; try < 3 && !ok; try++ {
			if _, err := c.Write(want); err != nil {
				t.Fatalf("UDP write of %d bytes to %v: %v", size, c.RemoteAddr(), err)
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(buf)
			ok = err == nil && bytes.Equal(buf[:n], want)
		}
		if !ok {
			t.Errorf("UDP echo of %d bytes via %v: no identical datagram back in 3 tries", size, c.RemoteAddr())
		}
	}
}

// kernelEchoServer serves TCP echo on l, one goroutine per connection,
// until the test ends.
func kernelEchoServer(t testing.TB, l net.Listener) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Through plain Reader and Writer: io.Copy between two
				// TCPConns splices through a pipe that Go keeps in a pool
				// after the copy, which leakcheck would count.
				io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 256<<10))
				c.(*net.TCPConn).CloseWrite()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

func addrPort(p netip.Prefix, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(p.Addr(), port)
}

func mib(n int64) string { return fmt.Sprintf("%dMiB", n>>20) }

// netnsDo runs fn on a thread inside ns.
func netnsDo(ns *roottest.NS, fn func() error) error { return netns.Do(ns.Path, fn) }
