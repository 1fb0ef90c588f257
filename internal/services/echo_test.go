package services

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// stuckConn stands in for a gVisor connection caught by the window bug
// described in echo.go: its Write cannot complete until the application
// has read more, and then it echoes normally.
type stuckConn struct {
	net.Conn // nil; only Read, Write and Close are used

	mu        sync.Mutex // guards read, written, closed
	cond      *sync.Cond
	read      int // bytes handed to the application so far
	written   int
	closed    bool
	total     int // the peer sends this much, then EOF
	unblockAt int // Write blocks until read reaches this
}

func newStuckConn(total, unblockAt int) *stuckConn {
	c := &stuckConn{total: total, unblockAt: unblockAt}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *stuckConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n := min(len(b), c.total-c.read)
	if n == 0 {
		return 0, errEOF
	}
	c.read += n
	c.cond.Broadcast()
	return n, nil
}

var errEOF = errors.New("EOF")

func (c *stuckConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.read < c.unblockAt && !c.closed {
		c.cond.Wait()
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	c.written += len(b)
	return len(b), nil
}

func (c *stuckConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.cond.Broadcast()
	return nil
}

// TestEchoReadsPastAStalledWrite checks that echo keeps reading when its
// writes make no progress, which is what breaks the gVisor stall, and
// still echoes every byte.
func TestEchoReadsPastAStalledWrite(t *testing.T) {
	const total = 8 << 20
	c := newStuckConn(total, echoSoftLimit+4*echoChunk)
	done := make(chan struct{})
	go func() { serveEcho(c); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.Close()
		<-done
		t.Fatalf("echo stalled: read %d bytes, wrote %d; want it to read past the soft limit (%d) while its write is stuck", c.read, c.written, echoSoftLimit)
	}
	if c.written != total {
		t.Errorf("echo wrote %d bytes back, want %d", c.written, total)
	}
}
