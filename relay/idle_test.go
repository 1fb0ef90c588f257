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
		before := liveHeap()
		dst := netip.AddrPortFrom(DefaultGateway4, srv.Port())
		fa, proto := full(dst)
		for range n {
			c, err := gonet.DialUDP(h.ns.GVisor(), nil, &fa, proto)
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
		per := heapEachSettled(before, n, 24<<10)
		t.Logf("%d bytes of heap each", per)
		if limit := int64(24 << 10); per > limit {
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
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	port := freePort(t, "udp4", "127.0.0.1:0")
	f := Forward{Proto: "udp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 7}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	defer h.r.RemoveForward(f)
	const n = 64
	before := liveHeap()
	for range n {
		c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", itoa(port)))
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
	per := heapEachSettled(before, n, 24<<10)
	t.Logf("%d bytes of heap each", per)
	if limit := int64(24 << 10); per > limit {
		t.Errorf("%d idle forwarded UDP flows: %d bytes of heap each, want under %d", n, per, limit)
	}
}
