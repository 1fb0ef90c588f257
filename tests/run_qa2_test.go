package tests

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
)

// runHostListener listens on host loopback until the test ends, hands
// each connection to f on the accepting goroutine (f starts its own to
// hold one open), and returns the port.
func runHostListener(t *testing.T, f func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f(c.(*net.TCPConn))
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestRunUploadDeliveredAfterExit: a command that writes a file to a
// socket and exits has all of it delivered, as without ustack; the
// relay used to drop what its stack still held when the command exited.
func TestRunUploadDeliveredAfterExit(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "bash", "head")
	const size = 12 << 20
	got := make(chan int64, 1)
	port := runHostListener(t, func(c *net.TCPConn) {
		defer c.Close()
		// A slow reader (about 12 MB/s), so that the bytes wait in the
		// relay when the command exits.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 64<<10)
		var n int64
		for {
			m, err := io.ReadFull(c, buf)
			n += int64(m)
			if err != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		got <- n
	})
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--", "bash", "-c",
		"head -c "+strconv.Itoa(size)+" /dev/zero >/dev/tcp/10.0.2.2/"+port)
	if res.status != 0 {
		t.Fatalf("upload: status %d, stderr %q", res.status, res.stderr)
	}
	select {
	case n := <-got:
		if n != size {
			t.Errorf("host received %d bytes of the %d the command sent before exiting", n, size)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the host never saw the upload end")
	}
}

// TestRunResetSeenInside: a host server that resets the connection
// makes a reader inside fail with ECONNRESET, not end as if complete.
func TestRunResetSeenInside(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "bash", "cat")
	port := runHostListener(t, func(c *net.TCPConn) {
		c.Write([]byte("partial"))
		time.Sleep(100 * time.Millisecond)
		c.SetLinger(0)
		c.Close()
	})
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--", "bash", "-c", "cat </dev/tcp/10.0.2.2/"+port)
	if res.status == 0 || !strings.Contains(res.stderr, "reset") {
		t.Errorf("cat from a server that resets: status %d, stdout %q, stderr %q; want a failure saying reset", res.status, res.stdout, res.stderr)
	}
}

// TestRunAnswerThenResetAtOnce: a server that answers and resets at once
// (Linux resets a socket closed with the request unread) hands the relay
// its answer and reset together, often before the namespace's handshake
// is complete, or even before Go's dialer has read SO_ERROR. Inside, as
// without ustack, every connect succeeds and every read ends with the
// reset. Before, about one connect in four failed: ECONNRESET (the relay
// reset the half-made connection) or ECONNREFUSED (it took the dial's
// ECONNRESET for a refusal).
func TestRunAnswerThenResetAtOnce(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "bash", "cat", "wc", "seq")
	port := runHostListener(t, func(c *net.TCPConn) {
		c.Write(make([]byte, 64<<10))
		c.SetLinger(0)
		c.Close()
	})
	const n = 20
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--", "bash", "-c",
		"for i in $(seq "+strconv.Itoa(n)+"); do cat </dev/tcp/10.0.2.2/"+port+" | wc -c; done")
	if strings.Contains(res.stderr, "connect") {
		t.Errorf("connects to a server that answers and resets failed:\n%s", res.stderr)
	}
	if got := strings.Count(res.stderr, "reset"); got != n {
		t.Errorf("%d of %d reads ended with a reset, want all\nstderr: %s", got, n, res.stderr)
	}
	// When Go's dialer saw the reset, the answer is gone with the
	// socket it closed: those reads get the reset alone.
	for _, l := range strings.Fields(res.stdout) {
		if l != "65536" && l != "0" {
			t.Errorf("a read got %s bytes of the 65536-byte answer", l)
		}
	}
}
