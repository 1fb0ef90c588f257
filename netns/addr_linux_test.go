package netns_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
)

// TestWaitLocal holds WaitLocal to what it promises with an address whose
// local route is deterministically late: an IPv6 address on a veth (which,
// unlike a TUN, does duplicate address detection) stays tentative, without
// its host route, for about a second (one probe, RetransTimer 1 s). The
// same late route is what made the reply to a TUN namespace's first IPv6
// packet disappear, for milliseconds instead of a second.
func TestWaitLocal(t *testing.T) {
	ns := roottest.Netns(t)
	roottest.RequireCommand(t, "ip")
	ns.Run("ip", "link", "add", "v6fa", "type", "veth", "peer", "name", "v6fb")
	ns.Run("ip", "link", "set", "v6fb", "up")
	ns.Run("ip", "link", "set", "v6fa", "up")
	ns.Run("ip", "addr", "add", "10.9.0.1/24", "dev", "v6fa")
	ns.Run("ip", "addr", "add", "fd00:9::1/64", "dev", "v6fa")
	v4, v6 := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("fd00:9::1")
	// Without this the test could not fail: the route must be missing now.
	if out := ns.Run("ip", "-6", "route", "get", v6.String()); strings.HasPrefix(out, "local") {
		t.Fatalf("right after adding %v with DAD: route get = %q; want it not local yet", v6, out)
	}

	err := netns.WaitLocal(ns.Path, []netip.Addr{v4, v6}, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), v6.String()) {
		t.Errorf("WaitLocal(%v, %v) during DAD, 50ms = %v; want an error naming %v", v4, v6, err, v6)
	}
	start := time.Now()
	if err := netns.WaitLocal(ns.Path, []netip.Addr{v4, v6}, 10*time.Second); err != nil {
		t.Fatalf("WaitLocal(%v, %v, 10s) = %v; want nil once DAD ends", v4, v6, err)
	}
	waited := time.Since(start)
	if out := ns.Run("ip", "-6", "route", "get", v6.String()); !strings.HasPrefix(out, "local") {
		t.Errorf("after WaitLocal returned (%v), route get %v = %q; want local", waited, v6, out)
	}
	if out := ns.Run("ip", "-6", "addr", "show", "dev", "v6fa", "to", v6.String()); !strings.Contains(out, v6.String()) || strings.Contains(out, "tentative") {
		t.Errorf("after WaitLocal returned (%v), ip addr show to %v = %q; want it there, not tentative", waited, v6, out)
	}
	// An address the namespace does not have never becomes local.
	other := netip.MustParseAddr("fd00:9::2")
	if err := netns.WaitLocal(ns.Path, []netip.Addr{other}, 20*time.Millisecond); err == nil {
		t.Errorf("WaitLocal(%v, not an address of the namespace) = nil; want a timeout error", other)
	}
}
