package relay

import (
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
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
	per := heapEachSettled(before, n, 128<<10)
	// Both ends of each connection are in this process: the
	// namespace stack's endpoint, the relay's, the host socket
	// and the echo server's.
	t.Logf("%d bytes of heap each", per)
	if limit := int64(128 << 10); per > limit {
		t.Errorf("%d idle relayed TCP connections that each echoed %d bytes: %d bytes of heap each, want under %d", n, len(msg), per, limit)
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
	before := liveHeap()
	msg := make([]byte, 300<<10)
	for range n {
		c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
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
	per := heapEachSettled(before, n, 128<<10)
	t.Logf("%d bytes of heap each", per)
	if limit := int64(128 << 10); per > limit {
		t.Errorf("%d idle forwarded TCP connections that each echoed %d bytes: %d bytes of heap each, want under %d", n, len(msg), per, limit)
	}
}
