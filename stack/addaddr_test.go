package stack

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestAddAddressAddsSubnetRoute: an address added to a running stack is
// reachable as one given to New is: its subnet gets a route through the
// NIC (as `ip addr add` adds the prefix route on Linux), so hosts of that
// subnet can be reached from it. Before, the address was added with no
// route and every connection to its subnet failed (network unreachable).
func TestAddAddressAddsSubnetRoute(t *testing.T) {
	leakcheck.Check(t)
	s1, s2 := pipeStacks(t, NICConfig{}, Config{})
	for _, a := range []struct {
		s *Stack
		p string
	}{
		{s1, "10.9.0.1/24"}, {s2, "10.9.0.2/24"}, {s1, "fd09::1/64"}, {s2, "fd09::2/64"},
		{s1, "10.9.0.11/24"}, // a second address in the same subnet: one route is enough
	} {
		if err := a.s.AddAddress("eth2", netip.MustParsePrefix(a.p)); err != nil {
			t.Fatalf("AddAddress(eth2, %s) = %v", a.p, err)
		}
	}
	echoRoundTrip(t, s2, s1, "10.9.0.2:7")
	echoRoundTrip(t, s1, s2, "[fd09::1]:7")
	n := 0
	for _, r := range s1.GVisor().GetRouteTable() {
		if r.Destination.String() == "10.9.0.0/24" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("routes to 10.9.0.0/24 after two addresses in it: %d, want 1", n)
	}
}
