package relay

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestIdleTCPConnectionsHoldNoBuffers: a connection CMD opened that
// carried data must not keep a relay buffer. Each held BufferSize (256
// KiB) for the host-to-namespace direction for its whole life, though
// directIn moves those bytes without it (330 KB of heap per connection
// here): 1 GiB of heap at the default --max-flows, which also let the
// collector leave that much garbage. (Port forwards, whose reads block in
// the buffer, are not covered: docs/soak.md.)
func TestIdleTCPConnectionsHoldNoBuffers(t *testing.T) {
	leakcheck.Check(t)
	srv := echoServer(t, "tcp4", "127.0.0.1:0")
	h := newHarness(t, Config{AllowHostLoopback: true})
	const n = 16
	before := liveHeap()
	dst := netip.AddrPortFrom(DefaultGateway4, srv.Port()).String()
	msg := make([]byte, 300<<10)
	for range n {
		c, err := h.dial(t, dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go c.Write(msg)
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
	}
	waitBytes(t, h.r, n*uint64(len(msg)), n*uint64(len(msg)))
	time.Sleep(100 * time.Millisecond) // the copy loops block in their reads again
	per := (liveHeap() - before) / n
	// Both ends of each connection are in this process: the
	// namespace stack's endpoint, the relay's, the host socket
	// and the echo server's.
	t.Logf("%d bytes of heap each", per)
	if limit := int64(128 << 10); per > limit {
		t.Errorf("%d idle relayed TCP connections that each echoed %d bytes: %d bytes of heap each, want under %d", n, len(msg), per, limit)
	}
}
