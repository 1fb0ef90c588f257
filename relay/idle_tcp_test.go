package relay

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// idleTCPBytes is what each connection of idleTCPHeap echoes, more than
// the default BufferSize (256 KiB).
const idleTCPBytes = 300 << 10

// idleTCPHeap opens n TCP connections through h's relay with dial, each
// echoing idleTCPBytes, and returns the live heap each connection holds
// once the relay has moved every byte and its copy loops block in their
// reads again (waiting up to 2 s for it to fall to limit:
// heapEachSettled). The connections stay open until the test ends.
func idleTCPHeap(t *testing.T, h *harness, n int, limit int64, dial func() (net.Conn, error)) int64 {
	t.Helper()
	before := liveHeap()
	msg := make([]byte, idleTCPBytes)
	for range n {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go c.Write(msg)
		if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
	}
	waitBytes(t, h.r, uint64(n*len(msg)), uint64(n*len(msg)))
	per := heapEachSettled(before, int64(n), limit)
	t.Logf("%d bytes of heap each", per)
	return per
}

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
	dst := netip.AddrPortFrom(DefaultGateway4, srv.Port()).String()
	// Both ends of each connection are in this process: the
	// namespace stack's endpoint, the relay's, the host socket
	// and the echo server's.
	const limit = 128 << 10
	per := idleTCPHeap(t, h, n, limit, func() (net.Conn, error) { return h.dial(t, dst) })
	if per > limit {
		t.Errorf("%d idle relayed TCP connections that each echoed %d bytes: %d bytes of heap each, want under %d", n, idleTCPBytes, per, limit)
	}
}

// TestIdleForwardConnectionsHoldNoBuffers: the same for a port forward's
// connections (a web server inside with keep-alive clients on the host).
// Both directions read into a BufferSize buffer that each kept, written
// to, for the connection's life: 575 KB of heap per idle connection here.
// Forwards now take the endpoint-to-socket paths outbound connections
// take (copyOut, directIn).
func TestIdleForwardConnectionsHoldNoBuffers(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	fa, proto := full(netip.AddrPortFrom(DefaultGuest4, 7))
	ln, err := gonet.ListenTCP(h.ns.GVisor(), fa, proto)
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c net.Conn) { io.Copy(c, c) })
	port := freePort(t, "tcp4", "127.0.0.1:0")
	f := Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 7}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	defer h.r.RemoveForward(f)
	const n = 16
	const limit = 128 << 10
	per := idleTCPHeap(t, h, n, limit, func() (net.Conn, error) {
		return net.Dial("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
	})
	if per > limit {
		t.Errorf("%d idle forwarded TCP connections that each echoed %d bytes: %d bytes of heap each, want under %d", n, idleTCPBytes, per, limit)
	}
}
