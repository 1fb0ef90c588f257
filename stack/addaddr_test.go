package stack

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
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

// TestAddAddressChecksAsNew: AddAddress refuses what New refuses in
// NICConfig.Addrs (an invalid prefix, an IPv4-mapped address, an IPv6
// address on a link below IPv6's minimum MTU), naming the problem,
// instead of adding an address that cannot work.
func TestAddAddressChecksAsNew(t *testing.T) {
	leakcheck.Check(t)
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 576)
	defer b.Close()
	s, err := New(Config{NICs: []NICConfig{{Endpoint: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		p    netip.Prefix
		want string
	}{
		{netip.Prefix{}, "invalid prefix"},
		{netip.MustParsePrefix("::ffff:10.2.0.1/120"), "IPv4-mapped"},
		{netip.MustParsePrefix("fd00::1/64"), "MTU 576"},
	} {
		if err := s.AddAddress("eth2", c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddAddress(eth2, %v) = %v, want an error saying %q", c.p, err, c.want)
		}
	}
	if err := s.AddAddress("eth2", netip.MustParsePrefix("10.1.0.1/24")); err != nil {
		t.Errorf("AddAddress(eth2, 10.1.0.1/24) = %v, want nil", err)
	}
}
