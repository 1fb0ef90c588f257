//go:build linux

package sockapi

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
)

// sortHosts lists one name with addresses of every kind, in an order
// that no RFC 3484 rule keeps.
const sortHosts = `198.51.100.1 multi
10.9.9.9 multi
10.1.200.200 multi
10.1.2.200 multi
10.1.2.2 multi
2001:db8:2::1 multi
2001:db8:1::99 multi
fe80::5 multi
127.0.0.9 multi
169.254.1.1 multi
::ffff:10.1.2.9 multi
`

// TestGetaddrinfoSortOrder checks the RFC 3484 order against what glibc
// 2.36 returned for the same hosts file, on a loopback-only network
// namespace and on one with a TUN interface holding 10.1.2.3/16 and
// 2001:db8:1::3/64 and default routes through it.
func TestGetaddrinfoSortOrder(t *testing.T) {
	leakcheck.Check(t)
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostsFile, []byte(sortHosts), 0o644); err != nil {
		t.Fatal(err)
	}
	loopback, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(loopback.Close)
	withNIC, err := stack.New(stack.Config{
		NICs: []stack.NICConfig{{
			Endpoint: channel.New(16, 1500, ""),
			Addrs:    []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16"), netip.MustParsePrefix("2001:db8:1::3/64")},
		}},
		Routes: []stack.Route{
			{Dest: netip.MustParsePrefix("0.0.0.0/0"), NIC: "eth2"},
			{Dest: netip.MustParsePrefix("::/0"), NIC: "eth2"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(withNIC.Close)
	cases := []struct {
		name   string
		st     *stack.Stack
		family int
		want   string
	}{
		{"loopback only", loopback, 0, "127.0.0.9 fe80::5 2001:db8:2::1 2001:db8:1::99 169.254.1.1 198.51.100.1 " +
			"10.9.9.9 10.1.200.200 10.1.2.200 10.1.2.2 ::ffff:10.1.2.9"},
		{"with NIC", withNIC, 0, "2001:db8:1::99 2001:db8:2::1 127.0.0.9 10.1.2.2 10.1.2.200 10.1.200.200 " +
			"198.51.100.1 10.9.9.9 ::ffff:10.1.2.9 169.254.1.1 fe80::5"},
		{"with NIC inet", withNIC, inet, "127.0.0.9 10.1.2.2 10.1.2.9 10.1.2.200 10.1.200.200 198.51.100.1 10.9.9.9 169.254.1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(c.st)
			if err := s.SetResolver(ResolverConfig{HostsFile: hostsFile}); err != nil {
				t.Fatal(err)
			}
			res, err := s.Getaddrinfo("multi", "", h(0, c.family, stream, 0))
			if err != nil {
				t.Fatalf("Getaddrinfo(multi) = %v", err)
			}
			var got []string
			for _, ai := range res {
				a := strings.TrimPrefix(strings.TrimSuffix(fmtSockaddr(ai.Addr), ":0"), "[")
				got = append(got, strings.TrimSuffix(a, "]"))
			}
			if g := strings.Join(got, " "); g != c.want {
				t.Errorf("Getaddrinfo(multi, family %d) order\n got %s\nwant %s", c.family, g, c.want)
			}
		})
	}
}
