package relay

import (
	"io"
	"net"
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

// TestSockWriterMoreThenFlush checks the MSG_MORE batching: a batch's
// last write (pending reaches zero) goes out at once, and writes held for
// more that never came go out on flush, which copyOut calls after a Read
// that wrote less than the endpoint had announced.
func TestSockWriterMoreThenFlush(t *testing.T) {
	leakcheck.Check(t)
	c, s := tcpPair(t)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	w := &sockWriter{rc: rc}
	// Linux sends data held by MSG_MORE after about 200 ms anyway; well
	// before that, it must have come because it was pushed.
	read := func(n int) error {
		s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err := io.ReadFull(s, make([]byte, n))
		return err
	}

	// A batch of two writes: the first held, the last pushes both.
	w.pending = 300
	if _, err := w.Write(make([]byte, 100)); err != nil || !w.corked {
		t.Fatalf("first write of a batch: err %v, corked %v; want nil, true", err, w.corked)
	}
	if _, err := w.Write(make([]byte, 200)); err != nil || w.corked {
		t.Fatalf("last write of a batch: err %v, corked %v; want nil, false", err, w.corked)
	}
	if err := read(300); err != nil {
		t.Fatalf("reading a finished batch: %v", err)
	}

	// A batch that ends short: flush sends what was held.
	w.pending = 1000
	if _, err := w.Write(make([]byte, 100)); err != nil || !w.corked {
		t.Fatalf("write of a short batch: err %v, corked %v; want nil, true", err, w.corked)
	}
	w.flush()
	if err := read(100); err != nil {
		t.Fatalf("reading a flushed short batch: %v", err)
	}
}
