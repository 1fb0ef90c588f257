package stack

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
)

// An IPv4-mapped IPv6 address is what netip.AddrFromSlice makes of a
// 16-byte net.IP. gVisor was handed it unmapped with the IPv6 prefix
// length: "::ffff:10.0.0.1/120" became 10.0.0.1/120 with a route for
// ::ffff:10.0.0.0/120, so 10.0.0.7 was unreachable, and a mapped gateway
// on an IPv6 route became a 4-byte IPv6 next hop. New must refuse them.
func TestConfigRefusesMappedAddresses(t *testing.T) {
	pp := netip.MustParsePrefix
	ep := func() NICConfig { return NICConfig{Endpoint: channel.New(1, 1500, "")} }
	withAddr := ep()
	withAddr.Addrs = []netip.Prefix{pp("::ffff:10.0.0.1/120")}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"nic addr", Config{NICs: []NICConfig{withAddr}}, "NICs[0].Addrs"},
		{"route dest", Config{NICs: []NICConfig{ep()}, Routes: []Route{{Dest: pp("::ffff:0.0.0.0/96"), NIC: "eth2"}}}, "Routes[0].Dest"},
		{"route gateway", Config{NICs: []NICConfig{ep()}, Routes: []Route{{Dest: pp("::/0"), Gateway: netip.MustParseAddr("::ffff:1.2.3.4"), NIC: "eth2"}}}, "Routes[0].Gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New() = nil error, want one naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "IPv4-mapped") {
				t.Errorf("New() = %v, want an error naming %s as IPv4-mapped", err, tc.want)
			}
		})
	}
}

// closeCounter counts Close calls on a link endpoint.
type closeCounter struct {
	*channel.Endpoint
	closes *atomic.Int32
}

func (c closeCounter) Close() { c.closes.Add(1); c.Endpoint.Close() }

// New promises that on error the endpoints stay the caller's to close. A
// mistake found only while NICs were being created (a repeated name, a
// route through a NIC that does not exist, an address given twice) left
// gVisor to close the NICs already created, and the caller's own Close
// then closed them a second time. These mistakes are the caller's and
// must be reported before any NIC exists, naming the field.
func TestConfigErrorsLeaveEndpointsAlone(t *testing.T) {
	pp := netip.MustParsePrefix
	var closes atomic.Int32
	ep := func() closeCounter { return closeCounter{channel.New(1, 1500, ""), &closes} }
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"same name twice", Config{NICs: []NICConfig{{Name: "a", Endpoint: ep()}, {Name: "a", Endpoint: ep()}}}, `NICs[1].Name "a"`},
		{"name of a later default", Config{NICs: []NICConfig{{Name: "eth3", Endpoint: ep()}, {Endpoint: ep()}}}, `NICs[1].Name "eth3"`},
		{"route through unknown nic", Config{NICs: []NICConfig{{Endpoint: ep()}}, Routes: []Route{{Dest: pp("0.0.0.0/0"), NIC: "eth9"}}}, `Routes[0].NIC "eth9"`},
		{"address twice", Config{NICs: []NICConfig{{Endpoint: ep(), Addrs: []netip.Prefix{pp("10.0.0.1/24"), pp("10.0.0.1/16")}}}}, "NICs[0].Addrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			closes.Store(0)
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatalf("New() = nil error, want one naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New() = %v, want an error naming %s", err, tc.want)
			}
			if n := closes.Load(); n != 0 {
				t.Errorf("New() failing closed the caller's endpoints %d times, want 0", n)
			}
		})
	}
}

// A NIC whose link MTU cannot carry the smallest IP packet of a family
// it has an address of (68 for IPv4, RFC 791; 1280 for IPv6, RFC 8200
// §5) was taken: every TCP connect over it then timed out, the SYN never
// sent, and every sendto said EINVAL. tun.Open refuses such MTUs; New
// must too, naming the NIC.
func TestConfigRefusesUnusableMTU(t *testing.T) {
	pp := netip.MustParsePrefix
	for _, tc := range []struct {
		mtu   uint32
		addrs []netip.Prefix
		want  string // "" for no error
	}{
		{0, nil, "MTU 0"},
		{0, []netip.Prefix{pp("10.0.0.1/24")}, "MTU 0"},
		{67, []netip.Prefix{pp("10.0.0.1/24")}, "MTU 67"},
		{68, []netip.Prefix{pp("10.0.0.1/24")}, ""},
		{1000, []netip.Prefix{pp("10.0.0.1/24"), pp("fd00::1/64")}, "MTU 1000"},
		{1280, []netip.Prefix{pp("fd00::1/64")}, ""},
	} {
		cfg := Config{NICs: []NICConfig{{Endpoint: channel.New(1, tc.mtu, ""), Addrs: tc.addrs}}}
		s, err := New(cfg)
		if s != nil {
			s.Close()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("New(MTU %d, %v) = %v, want no error", tc.mtu, tc.addrs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "NICs[0]") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("New(MTU %d, %v) = %v, want an error naming NICs[0] and %s", tc.mtu, tc.addrs, err, tc.want)
		}
	}
}
