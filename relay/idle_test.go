package relay

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// liveHeap returns the live heap once everything unreachable (the buffer
// pools included, which take two collections) has been collected.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// idleUDPHeap opens n UDP flows with dial, each sending 1000 bytes to an
// echo server and reading them back, and returns the live heap each flow
// holds once they are idle (waiting up to 2 s for it to fall to limit:
// heapEachSettled). The flows stay open until the test ends.
func idleUDPHeap(t *testing.T, n int, limit int64, dial func() (net.Conn, error)) int64 {
	t.Helper()
	before := liveHeap()
	for range n {
		c, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1500)); err != nil {
			t.Fatalf("reading the echo: %v", err)
		}
	}
	per := heapEachSettled(before, int64(n), limit)
	t.Logf("%d bytes of heap each", per)
	return per
}

// TestIdleUDPFlowsHoldNoBuffers: a relayed flow that carried a datagram
// and is now idle must not keep a copy buffer. Most flows are idle most
// of their life: a resolver's (one per query) kept 10 s, others for
// --udp-timeout after their last datagram. Each held two 64 KiB buffers
// (139 KB of heap per flow here), 512 MiB at the default --max-flows; in
// tests/soak -mode run, 95% of ustack's heap.
func TestIdleUDPFlowsHoldNoBuffers(t *testing.T) {
	leakcheck.Check(t)
	{
		srv := udpEcho(t, "udp4", "127.0.0.1:0")
		h := newHarness(t, Config{AllowHostLoopback: true})
		const n = 64
		dst := netip.AddrPortFrom(DefaultGateway4, srv.Port())
		fa, proto := full(dst)
		const limit = 24 << 10
		per := idleUDPHeap(t, n, limit, func() (net.Conn, error) {
			return gonet.DialUDP(h.ns.GVisor(), nil, &fa, proto)
		})
		if per > limit {
			t.Errorf("%d idle relayed UDP flows: %d bytes of heap each, want under %d", n, per, limit)
		}
	}
}

// TestIdleForwardUDPFlowsHoldNoBuffers: the same for a UDP port
// forward's flows (a client on the host, a server inside): each flow's
// reply loop kept a 64 KiB buffer while the flow waited out
// --udp-timeout.
func TestIdleForwardUDPFlowsHoldNoBuffers(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	fa, proto := full(netip.AddrPortFrom(DefaultGuest4, 7))
	pc, err := gonet.DialUDP(h.ns.GVisor(), &fa, nil, proto)
	if err != nil {
		t.Fatal(err)
	}
	echoPackets(t, pc)
	port := freePort(t, "udp4", "127.0.0.1:0")
	f := Forward{Proto: "udp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 7}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	defer h.r.RemoveForward(f)
	const n = 64
	const limit = 24 << 10
	per := idleUDPHeap(t, n, limit, func() (net.Conn, error) {
		return net.Dial("udp4", net.JoinHostPort("127.0.0.1", itoa(port)))
	})
	if per > limit {
		t.Errorf("%d idle forwarded UDP flows: %d bytes of heap each, want under %d", n, per, limit)
	}
}
