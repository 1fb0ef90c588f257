package relay

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

func TestNetworkAddrs(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		nw                Network
		gw4, dns4, guest4 string
		gw6, dns6, guest6 string
		bits4, bits6      int
	}{
		{Network{}, "10.0.2.2", "10.0.2.3", "10.0.2.100", "fd00::2", "fd00::3", "fd00::100", 24, 64},
		{DefaultNetwork, "10.0.2.2", "10.0.2.3", "10.0.2.100", "fd00::2", "fd00::3", "fd00::100", 24, 64},
		{Network{Prefix4: netip.MustParsePrefix("10.0.3.0/24")}, "10.0.3.2", "10.0.3.3", "10.0.3.100", "fd00::2", "fd00::3", "fd00::100", 24, 64},
		{Network{Prefix4: netip.MustParsePrefix("172.16.5.128/25"), Prefix6: netip.MustParsePrefix("fd12:3456::/48")},
			"172.16.5.130", "172.16.5.131", "172.16.5.228", "fd12:3456::2", "fd12:3456::3", "fd12:3456::100", 25, 48},
		{Network{Prefix4: netip.MustParsePrefix("192.168.0.0/16"), Prefix6: netip.MustParsePrefix("fd00:0:0:1:ffff:ffff:ffff:fe00/119")},
			"192.168.0.2", "192.168.0.3", "192.168.0.100", "fd00::1:ffff:ffff:ffff:fe02", "fd00::1:ffff:ffff:ffff:fe03", "fd00::1:ffff:ffff:ffff:ff00", 16, 119},
	} {
		nw := tc.nw
		got := []string{nw.Gateway4().String(), nw.DNS4().String(), nw.Guest4().String(), nw.Gateway6().String(), nw.DNS6().String(), nw.Guest6().String()}
		want := []string{tc.gw4, tc.dns4, tc.guest4, tc.gw6, tc.dns6, tc.guest6}
		if strings.Join(got, " ") != strings.Join(want, " ") || nw.Bits4() != tc.bits4 || nw.Bits6() != tc.bits6 {
			t.Errorf("%+v: addresses %v /%d /%d, want %v /%d /%d", nw, got, nw.Bits4(), nw.Bits6(), want, tc.bits4, tc.bits6)
		}
	}
}

// gatewayStack returns a gateway stack over a pipe link, closed when the
// test ends, for a test of what New accepts.
func gatewayStack(t *testing.T) *stack.Stack {
	t.Helper()
	_, b := pipe.New("", "", 1500)
	gwn, err := stack.New(StackConfig(b, nil, Network{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gwn.Close() })
	return gwn
}

// TestConfigNetworkChecked: New refuses, naming the field, a Network
// whose guest would fall outside its prefix or whose prefix is of the
// wrong family, instead of configuring addresses the namespace's own
// prefix does not hold.
func TestConfigNetworkChecked(t *testing.T) {
	leakcheck.Check(t)
	gwn := gatewayStack(t)
	for _, tc := range []struct {
		nw   Network
		want string
	}{
		{Network{Prefix4: netip.MustParsePrefix("10.0.3.0/30")}, "Config.Network.Prefix4 10.0.3.0/30: /30 is too small"},
		{Network{Prefix4: netip.MustParsePrefix("10.0.3.100/24")}, "Config.Network.Prefix4 10.0.3.100/24: host bits set"},
		{Network{Prefix4: netip.MustParsePrefix("fd00:1::/64")}, "Config.Network.Prefix4 fd00:1::/64: wrong address family"},
		{Network{Prefix6: netip.MustParsePrefix("10.0.3.0/24")}, "Config.Network.Prefix6 10.0.3.0/24: wrong address family"},
		{Network{Prefix6: netip.MustParsePrefix("ff02::/64")}, "Config.Network.Prefix6 ff02::/64: overlaps the multicast range"},
	} {
		r, err := New(Config{Stack: gwn, Network: tc.nw})
		if r != nil {
			r.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(Network %+v) = %v, want an error containing %q", tc.nw, err, tc.want)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		prefix string
		want   string // "" means accepted
	}{
		{"10.0.2.0/24", ""},
		{"10.0.3.0/24", ""},
		{"10.0.0.0/8", ""},
		{"172.16.0.0/12", ""},
		{"192.168.100.128/25", ""},
		{"fd00::/64", ""},
		{"fd00:1::/119", ""},
		{"fc00::/7", ""},
		{"10.0.3.100/24", "host bits set: the network is 10.0.3.0/24"},
		{"fd00::100/64", "host bits set: the network is fd00::/64"},
		{"10.0.3.0/26", "/26 is too small"},
		{"10.0.3.0/32", "/32 is too small"},
		{"fd00::/120", "/120 is too small"},
		// Public and shared ranges: slirp4netns accepts them, and the
		// relay hides only +2, +3, +100 and the broadcast.
		{"8.8.8.0/24", ""},
		{"10.0.0.0/7", ""},
		{"100.64.0.0/24", ""},
		{"2001:db8::/64", ""},
		{"127.0.0.0/24", "overlaps the loopback range 127.0.0.0/8"},
		{"126.0.0.0/7", "loopback"}, // starts outside 127/8, covers it
		{"0.0.0.0/24", "unspecified"},
		{"::/64", "unspecified and loopback"},
		{"::ff00:0:0/88", "IPv4-mapped"},
		{"192.0.0.0/2", "multicast"},
		{"255.255.255.128/25", "limited broadcast"},
		{"fe00::/7", "link-local"},
		{"224.0.0.0/24", "multicast"},
		{"ff02::/64", "multicast"},
		{"169.254.0.0/24", "link-local"},
		{"fe80::/64", "link-local"},
		{"::ffff:10.0.2.0/120", "IPv4-mapped"},
	} {
		err := CheckPrefix(netip.MustParsePrefix(tc.prefix))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckPrefix(%s) = %v, want nil", tc.prefix, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckPrefix(%s) = %v, want an error containing %q", tc.prefix, err, tc.want)
		}
	}
	if err := CheckPrefix(netip.Prefix{}); err == nil {
		t.Errorf("CheckPrefix(invalid) = nil, want an error")
	}
}
