package stack

import (
	"net/netip"
	"strings"
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
