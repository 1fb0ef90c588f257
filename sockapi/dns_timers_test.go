//go:build linux

package sockapi

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// TestDNSExchangesLeaveNoTimers: each DNS exchange set a deadline on its
// socket and closed it with the deadline still pending, so gonet's read
// and write timers (with their channels) stayed in the runtime until the
// query timeout passed (5 s by default) though the answer came at once:
// about 450 bytes per exchange, held for the timeout, growing with the
// lookup rate (tests/soak -mode embed, TestSoakChurnReturnsToBaseline).
func TestDNSExchangesLeaveNoTimers(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st)
	defer s.CloseAll()
	dns := startDNS(t, st.GVisor(), "127.0.0.53:53")
	dns.add("timers.soak.", "A 127.0.0.1")
	if err := s.SetResolver(ResolverConfig{Nameservers: []netip.AddrPort{dns.addr}}); err != nil {
		t.Fatal(err)
	}
	heap := func() int64 {
		dns.queries() // the test server's own log
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	lookup := func() {
		t.Helper()
		if _, err := s.Getaddrinfo("timers.soak.", "", &AddrInfo{Family: unix.AF_INET}); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		lookup()
	}
	before := heap()
	const n = 500
	for range n {
		lookup()
	}
	per := (heap() - before) / n
	t.Logf("%d bytes of heap per lookup, within the query timeout", per)
	if per > 100 {
		t.Errorf("%d lookups answered at once left %d bytes of heap each until their timeout, want under 100", n, per)
	}
}
