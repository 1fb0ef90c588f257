package relay

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// tcpPair returns both ends of a TCP connection over host loopback, closed
// when the test ends.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestSockWriterWaitAfterSpaceFreed fills a host socket through
// sockWriter until it reports full, lets the peer read everything (so
// the socket's one "writable" edge fires while nobody waits), and then
// checks that waitWritable returns at once. It used to wait in the
// netpoller for a fresh edge, which a drained socket never raises: the
// netpoller forgets an edge that arrived before the wait began, so
// copyOut stopped reading the namespace and its uploads stalled at a
// zero window for good.
func TestSockWriterWaitAfterSpaceFreed(t *testing.T) {
	leakcheck.Check(t)
	c, s := tcpPair(t)
	c.SetWriteBuffer(64 << 10)
	s.SetReadBuffer(64 << 10)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := &sockWriter{rc: rc}
	buf := make([]byte, 256<<10)
	sent := 0
	for !w.full {
		n, err := w.Write(buf)
		sent += n
		if err != nil && !w.full {
			t.Fatalf("Write: %v", err)
		}
		if sent > 256<<20 {
			t.Fatal("the socket never filled")
		}
	}
	w.full = false
	if _, err := io.ReadFull(s, make([]byte, sent)); err != nil {
		t.Fatalf("reading what was sent: %v", err)
	}
	// Wait until everything sent is acknowledged: the writable edge has
	// fired by then.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		outq := -1
		rc.Control(func(fd uintptr) { outq, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		if outq == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still unacknowledged", outq)
		}
	}
	// Let the runtime's netpoller collect the edge (it polls whenever
	// this goroutine sleeps).
	time.Sleep(50 * time.Millisecond)
	c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	if err := w.waitWritable(); err != nil {
		t.Fatalf("waitWritable on an empty socket: %v, want it to return at once", err)
	}
}

// TestCopyOutSlowHostReader sends 8 MiB from the namespace to a host
// peer that reads slowly through a small receive buffer, so that
// copyOut's writes from gVisor's queue keep stopping part way (the
// socket full) and the rest must be sent later from where they stopped:
// the bytes must arrive whole and in order.
func TestCopyOutSlowHostReader(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 8 << 20
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
		var b bytes.Buffer
		chunk := make([]byte, 8<<10)
		for {
			n, err := c.Read(chunk)
			b.Write(chunk[:n])
			if err != nil {
				break
			}
			if b.Len()%(256<<10) < n {
				time.Sleep(2 * time.Millisecond)
			}
		}
		got <- b.Bytes()
	}()
	h := newHarness(t, Config{AllowHostLoopback: true})
	dst := netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port())
	c, err := h.dial(t, dst.String())
	if err != nil {
		t.Fatalf("dial %v: %v", dst, err)
	}
	defer c.Close()
	want := make([]byte, size)
	rand.Read(want)
	if _, err := c.Write(want); err != nil {
		t.Fatalf("Write: %v", err)
	}
	c.CloseWrite()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the host peer got %d bytes (equal: %v), want the %d sent", len(b), bytes.Equal(b, want), size)
	}
}
