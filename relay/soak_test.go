package relay

import (
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// relayFigures is what must stay flat in a `ustack run` that runs for
// days under churn.
type relayFigures struct {
	goroutines, fds      int
	endpoints            uint64 // the relay's stack, cleanup stage included
	nsEndpoints          uint64 // the namespace's stack (its TIME_WAIT lasts 1 s)
	tcpActive, udpActive int64
	heap                 int64
}

func readRelayFigures(h *harness) relayFigures {
	ents, _ := os.ReadDir("/proc/self/fd")
	st := h.r.cfg.Stack.Endpoints()
	ns := h.ns.Endpoints()
	rs := h.r.Stats()
	return relayFigures{
		goroutines: runtime.NumGoroutine(), fds: len(ents),
		endpoints:   st.Registered + st.Cleanup,
		nsEndpoints: ns.Registered + ns.Cleanup,
		tcpActive:   rs.TCPActive, udpActive: rs.UDPActive,
		heap: liveHeap(),
	}
}

// TestRelaySoak is the CI-sized soak of `ustack run`'s relay (tests/soak
// -mode run is the long one): warm up with the churn a long-running CMD
// makes (TCP connections both families, refused ones, UDP flows from
// fresh ports, DNS queries, port forwards added, used and removed), take
// the figures once the flows have expired, churn ten times as much
// again, and require goroutines, descriptors, endpoints and active flows
// back at those figures and the live heap within 256 KiB.
func TestRelaySoak(t *testing.T) {
	leakcheck.Check(t)
	tcp4 := echoServer(t, "tcp4", "127.0.0.1:0")
	tcp6 := echoServer(t, "tcp6", "[::1]:0")
	udp4 := udpEcho(t, "udp4", "127.0.0.1:0")
	udp6 := udpEcho(t, "udp6", "[::1]:0")
	dns := udpEcho(t, "udp4", "127.0.0.1:0") // the forwarder never looks inside
	h := newHarness(t, Config{
		AllowHostLoopback: true, DNSUpstreams: []netip.AddrPort{dns},
		UDPIdleTimeout: 500 * time.Millisecond, // long enough for the echo on a loaded machine
	})
	h.nsListen(t, netip.AddrPortFrom(DefaultGuest4, 80))
	cycle := func(i int) {
		t.Helper()
		tcp, udp, gw := tcp4, udp4, DefaultGateway4
		if i%2 == 1 {
			tcp, udp, gw = tcp6, udp6, DefaultGateway6
		}
		c, err := h.dial(t, netip.AddrPortFrom(gw, tcp.Port()).String())
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, 1000+i)
		c.Close()
		if c, err := h.dial(t, netip.AddrPortFrom(gw, 1).String()); err == nil {
			c.Close()
			t.Fatal("a connection to the host's port 1 succeeded")
		}
		if _, err := h.udpExchange(t, netip.AddrPortFrom(gw, udp.Port()), "ping"); err != nil {
			t.Fatalf("UDP echo: %v", err)
		}
		if _, err := h.udpExchange(t, netip.AddrPortFrom(DefaultDNS4, 53), "query"); err != nil {
			t.Fatalf("DNS: %v", err)
		}
		if _, err := readThroughForward(t, h, "tcp4", "127.0.0.1", 80); err != nil {
			t.Fatalf("port forward: %v", err)
		}
	}
	settle := func(want relayFigures) relayFigures {
		deadline := time.Now().Add(10 * time.Second)
		for {
			f := readRelayFigures(h)
			if f.tcpActive == 0 && f.udpActive == 0 && f.goroutines <= want.goroutines &&
				f.fds <= want.fds && f.endpoints <= want.endpoints && f.nsEndpoints <= want.nsEndpoints ||
				time.Now().After(deadline) {
				return f
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	const warm, churn = 60, 100
	for i := range warm {
		cycle(i)
	}
	// At rest the namespace has its one listener (nsListen) and the
	// relay's stack nothing.
	base := settle(relayFigures{goroutines: 1 << 30, fds: 1 << 30, endpoints: 0, nsEndpoints: 1})
	for i := range churn {
		cycle(i)
	}
	got := settle(base)
	t.Logf("warm-up %+v, after %+v", base, got)
	if got.goroutines > base.goroutines || got.fds > base.fds || got.endpoints > base.endpoints ||
		got.nsEndpoints > base.nsEndpoints || got.tcpActive != 0 || got.udpActive != 0 {
		t.Errorf("after %d more cycles: %+v; want at most the warm-up's %+v, no active flows", churn, got, base)
	}
	// Measured 18-52 KB. The warm-up (over a second of cycles, past
	// TIME_WAIT) lets gVisor's demuxer and port maps reach the size the
	// churn needs; Go maps never shrink (docs/soak.md). With the relay
	// forgetting to untrack each UDP flow: 400 KB.
	if grown := got.heap - base.heap; grown > 256<<10 {
		t.Errorf("after %d more cycles the live heap grew by %d bytes (%d per cycle), want under 256 KiB", churn, grown, grown/churn)
	}
}
